"""Map raw label values (e.g. ISBI's 0/255, instance ids) to class indices.

A map is written ``VALUE:CLASS`` pairs separated by commas; ``*`` stands for every value not
listed. ISBI 2012 labels (255 = cell interior, 0 = membrane) become classes 0 and 1 with
``255:0,0:1``; instance masks become a binary class map with ``0:0,*:1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class LabelMap:
    pairs: tuple[tuple[int, int], ...]
    default: int | None = None

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        """Class indices (int16) for ``labels``; a value with no mapping is an error."""
        labels = np.asarray(labels)
        out = np.full(labels.shape, -1 if self.default is None else self.default, np.int16)
        for value, cls in self.pairs:
            out[labels == value] = cls
        if self.default is None and (out < 0).any():
            unmapped = np.unique(labels[out < 0])[:5].tolist()
            raise InputError(f"label values {unmapped} are not in the label map")
        return out


def parse_label_map(text: str) -> LabelMap:
    """Parse ``"255:0,0:1"`` or ``"0:0,*:1"`` into a :class:`LabelMap`."""
    pairs, default = [], None
    try:
        for item in text.split(","):
            value, cls = (part.strip() for part in item.split(":"))
            if value == "*":
                default = int(cls)
            else:
                pairs.append((int(value), int(cls)))
    except ValueError:
        raise InputError(
            f"bad label map {text!r}: write VALUE:CLASS pairs, e.g. 255:0,0:1 or 0:0,*:1"
        ) from None
    return LabelMap(tuple(pairs), default)


def check_class_indices(labels: np.ndarray, num_classes: int, what: str = "labels") -> None:
    """Raise a helpful error when ``labels`` holds values that are not class indices."""
    values = np.unique(labels)
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise InputError(
            f"{what} hold values {bad[:5].tolist()} but only classes 0..{num_classes - 1} exist; "
            "map them with a label map such as 255:0,0:1 or 0:0,*:1"
        )


def parse_index_list(text: str, count: int | None = None) -> list[int]:
    """Parse ``"0-23"`` or ``"0,2,5-7"`` into sorted indices, checked against ``count``.

    Indices are not negative, a range runs upwards (``2-0`` is an error, not nothing), and the
    list selects at least one index.
    """
    indices: set[int] = set()
    for part in text.split(","):
        start, dash, stop = part.strip().partition("-")
        if not all(n.isascii() and n.isdigit() for n in ((start, stop) if dash else (start,))):
            raise InputError(f"bad slice list {text!r}: write e.g. 0-23 or 0,2,5-7")
        first, last = int(start), int(stop) if dash else int(start)
        if last < first:
            raise InputError(f"bad slice range {part.strip()!r}: its end comes before its start")
        if count is not None and last >= count:
            raise InputError(f"slices {text} are out of range: there are {count} (0-{count - 1})")
        indices.update(range(first, last + 1))
    return sorted(indices)

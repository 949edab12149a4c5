"""Image/label pairs for training and evaluation, from TIFF stacks or folders of images.

A stack contributes one pair per slice; a folder contributes one pair per image, matched to
the label folder by file name (``images/a.tif`` with ``masks/a.tif`` or ``masks/a.png``), so
images of different sizes (the nuclei set) can be used together.

Instance masks can be turned into class targets that keep touching objects apart
(:func:`separate_touching`): a network trained on a plain union of touching nuclei learns to
merge them, and no post-processing can reliably cut them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError
from ..evaluation.labelmap import LabelMap, parse_index_list
from ..io.read import list_images, read_image, read_stack


@dataclass
class Pairs:
    """Parallel lists of 2D images (Y,X) or (Y,X,C) and label images (Y,X), with their names."""

    images: list[np.ndarray]
    labels: list[np.ndarray]
    names: list[str]

    def select(self, indices: list[int]) -> Pairs:
        return Pairs(
            [self.images[i] for i in indices],
            [self.labels[i] for i in indices],
            [self.names[i] for i in indices],
        )

    def __len__(self) -> int:
        return len(self.images)

    def __add__(self, other: Pairs) -> Pairs:
        return Pairs(
            self.images + other.images, self.labels + other.labels, self.names + other.names
        )

    def indices(self, spec: str) -> list[int]:
        """Indices chosen by ``"0-23"``-style ranges or by ``"@FILE"``: one name or index a line."""
        if not spec.startswith("@"):
            return parse_index_list(spec, len(self))
        path = Path(spec[1:])
        if not path.is_file():
            raise InputError(f"list file {path} does not exist")
        position = {name: i for i, name in enumerate(self.names)}
        chosen = []
        for line in path.read_text().split():
            if line not in position and not line.isdigit():
                raise InputError(f"{path}: {line!r} is not an image of this data set")
            chosen.append(position[line] if line in position else int(line))
        return sorted(set(chosen))


def check_image_values(image: np.ndarray, what: str) -> None:
    """Refuse an image training cannot learn from: complex values, or NaN / infinite pixels
    (one would turn the loss, then every weight, into NaN)."""
    image = np.asarray(image)
    if np.iscomplexobj(image):
        raise InputError(f"{what}: complex images cannot be trained on; use real values")
    if image.dtype.kind == "f":
        bad = image.size - np.count_nonzero(np.isfinite(image))
        if bad:
            raise InputError(
                f"{what}: {bad} pixel{'s are' if bad > 1 else ' is'} NaN or infinite; "
                "training needs finite values"
            )


def separate_touching(instances: np.ndarray) -> np.ndarray:
    """A copy of a 2D instance image (0 = background) in which the pixels of an object that
    touch (8-connected) a different object are set to 0, leaving a 2-pixel gap between them."""
    instances = np.asarray(instances)
    ids = instances.astype(np.int64)
    above = ndi.maximum_filter(ids, size=3)
    below = ndi.minimum_filter(np.where(ids == 0, ids.max() + 1, ids), size=3)
    border = (ids > 0) & ((above != ids) | (below != ids))
    out = instances.copy()
    out[border] = 0
    return out


def load_images(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """The 2D images of a stack file (one per slice) or of a folder (one per file)."""
    path = Path(path)
    if path.is_dir():
        files = list_images(path)
        return [read_image(f) for f in files], [f.stem for f in files]
    with read_stack(path) as stack:
        return [np.asarray(stack[z]) for z in range(len(stack))], [
            f"{path.stem}[{z}]" for z in range(len(stack))
        ]


def load_pairs(
    images: str | Path,
    labels: str | Path,
    label_map: LabelMap | None = None,
    prefix: str = "",
    *,
    touching_apart: bool = False,
) -> Pairs:
    """Image/label pairs; labels pass through ``label_map`` when given.

    With ``touching_apart`` the label images are instance ids and go through
    :func:`separate_touching` before the label map.

    Pairs are named after the image files (or ``stem[z]`` for slices) with ``prefix`` in front,
    which tells apart images of the same name in several folders.
    """
    imgs, names = load_images(images)
    labels = Path(labels)
    if labels.is_dir() and Path(images).is_dir():
        by_stem = {f.stem: f for f in list_images(labels)}
        missing = [n for n in names if n not in by_stem]
        if missing:
            raise InputError(f"{labels}: no label image for {missing[:3]} ({len(missing)} missing)")
        labs = [read_image(by_stem[n]) for n in names]
    else:
        labs, _ = load_images(labels)
    if len(labs) != len(imgs):
        raise InputError(f"{len(imgs)} images but {len(labs)} label images")
    for name, img, lab in zip(names, imgs, labs, strict=True):
        if img.shape[:2] != lab.shape[:2] or lab.ndim != 2:
            raise InputError(
                f"image {name} has shape {img.shape} but its labels have shape {lab.shape}"
            )
        check_image_values(img, f"image {name}")
    if touching_apart:
        labs = [separate_touching(lab) for lab in labs]
    if label_map is not None:
        labs = [label_map(lab) for lab in labs]
    return Pairs(imgs, labs, [prefix + n for n in names])

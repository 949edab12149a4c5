"""Which layer is the ground truth, and are its two classes the other way round?

Plain Python on names and arrays (no Qt, no napari), used by the Dice and Retrain widgets to
choose their ground truth, by the reader to open label files as Labels, and by the Dice
widget to propose "swap classes" (ISBI's labels mark the cell interior, not the membrane,
with 255).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_LABEL_VALUES = 16  # more distinct values than this in one slice: an image, not classes
LABEL_WORDS = ("ground truth", "truth", "label", "mask", "annotation", "_gt", "gt_")
SWAP_MARGIN = 0.2  # mean Dice gained by swapping before the swap is proposed


def sample_plane(data: Any) -> np.ndarray:
    """The middle slice of a stack (the image itself when 2D): enough to judge the values."""
    return np.asarray(data[data.shape[0] // 2] if len(data.shape) >= 3 else data)


def named_like_labels(name: str) -> bool:
    lower = name.lower()
    return any(word in lower for word in LABEL_WORDS)


def looks_like_labels(data: Any, name: str = "") -> bool:
    """Integer (or bool) data with 2 to 16 values in its middle slice, or any integer data
    named like labels ("mask", "labels", "ground truth"; instance labels hold many values)."""
    if np.dtype(data.dtype).kind not in "biu":
        return False
    if named_like_labels(name):
        return True
    from ..core.evaluation.labelmap import distinct_values

    return 2 <= distinct_values(sample_plane(data)).size <= MAX_LABEL_VALUES


@dataclass(frozen=True)
class Candidate:
    """A layer that could be the ground truth: its name, data and whether it is a Labels layer."""

    name: str
    data: Any
    is_labels: bool


def _holds_classes(candidate: Candidate) -> bool:
    """Labels that are not all one value (an empty layer to paint in is no truth yet)."""
    if candidate.is_labels:
        from ..core.evaluation.labelmap import distinct_values

        return distinct_values(sample_plane(candidate.data)).size >= 2
    return looks_like_labels(candidate.data, candidate.name)


def pick_truth(candidates: Sequence[Candidate], shape: tuple[int, ...] | None) -> str | None:
    """The likeliest ground truth: of ``shape`` (when given), label-like values before a name
    that says so, later layers before earlier ones. None when nothing fits the shape."""
    fitting = [c for c in candidates if shape is None or tuple(c.data.shape) == tuple(shape)]

    def rank(item: tuple[int, Candidate]) -> tuple[bool, bool, int]:
        index, candidate = item
        return (_holds_classes(candidate), named_like_labels(candidate.name), index)

    best = max(enumerate(fitting), key=rank, default=None)
    return None if best is None else best[1].name


def is_truth_like(candidate: Candidate) -> bool:
    """A layer worth switching the ground truth to when it appears."""
    return _holds_classes(candidate)


@dataclass(frozen=True)
class SwapHint:
    """Mean Dice (over classes) as the classes are read now and with the two swapped."""

    current: float
    swapped: float

    def text(self, invert: bool) -> str:
        action = "unticking" if invert else "ticking"
        why = "" if invert else " (the ground truth's high value is probably the background)"
        return (
            f"Classes look swapped: {action} 'swap classes' gives mean Dice "
            f"{self.swapped:.3f} instead of {self.current:.3f}{why}."
        )


def swap_hint(current: dict[str, float], swapped: dict[str, float]) -> SwapHint | None:
    """A hint when swapping the two classes scores much better than the reading in use."""
    now, other = float(np.mean(list(current.values()))), float(np.mean(list(swapped.values())))
    return SwapHint(now, other) if other - now > SWAP_MARGIN else None


def score(
    pred: np.ndarray, truth: np.ndarray, class_names: Sequence[str], *, invert: bool, **kwargs: Any
) -> tuple[Any, SwapHint | None]:
    """``evaluation.evaluate``, plus a :class:`SwapHint` for two-valued ground truth whose classes
    are read the wrong way round."""
    from ..core.evaluation.labelmap import distinct_values
    from .evaluation import evaluate

    evaluation = evaluate(pred, truth, class_names, invert=invert, **kwargs)
    if len(class_names) != 2 or distinct_values(truth).size != 2:  # a raw image is no truth
        return evaluation, None
    other = evaluate(pred, truth, class_names, invert=not invert, edited=kwargs.get("edited", ()))
    return evaluation, swap_hint(evaluation.mean_dice, other.mean_dice)

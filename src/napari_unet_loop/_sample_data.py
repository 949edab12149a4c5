"""File ▸ Open Sample: synthetic EM membranes and fluorescence nuclei, each with ground truth.

The stacks are seeded, so every opening shows the same data (and Retrain/Dice results can be
compared between sessions). Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

from .core.synthetic import make_membrane_stack, make_nuclei_stack

SAMPLE_SHAPE = (8, 256, 256)
SEED = 0

LayerData = tuple[Any, dict, str]


def _pair(name: str, image: Any, labels: Any, features: dict | None = None) -> list[LayerData]:
    truth = {"name": f"{name} ground truth", "opacity": 0.4}
    if features:
        truth["features"] = features  # napari names the class under the cursor
    return [(image, {"name": name}, "image"), (labels, truth, "labels")]


def em_membranes_sample() -> list[LayerData]:
    """A serial-section EM-like stack and its membrane mask (0 = interior, 1 = membrane)."""
    image, labels = make_membrane_stack(SAMPLE_SHAPE, seed=SEED)
    classes = ["interior", "membrane"]  # as the shipped em-membranes model names them
    return _pair("em_membranes", image, labels, {"index": [0, 1], "class": classes})


def nuclei_sample() -> list[LayerData]:
    """A fluorescence nuclei stack and its instance labels (0 = background, one id per nucleus)."""
    image, labels = make_nuclei_stack(SAMPLE_SHAPE, seed=SEED)
    return _pair("nuclei", image, labels)

"""File ▸ Open Sample: synthetic EM membranes and fluorescence nuclei, each with ground truth.

The stacks come from the project's seeded generator (``core.synthetic``), stored in
``samples/*.npz`` by ``sample_data/make_samples.py``: napari calls a sample on the GUI thread,
and generating one there (with the scipy imports it needs) froze the viewer for seconds, where
reading the file takes milliseconds. Every opening shows the same data, so Retrain/Dice results
can be compared between sessions. Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_SHAPE = (8, 256, 256)
SEED = 0
SAMPLES = Path(__file__).parent / "samples"

LayerData = tuple[Any, dict, str]


def load_sample(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The image and labels of sample ``name`` ("em_membranes" or "nuclei")."""
    with np.load(SAMPLES / f"{name}.npz") as stored:
        return stored["image"], stored["labels"]


def _pair(name: str, features: dict | None = None) -> list[LayerData]:
    image, labels = load_sample(name)
    truth = {"name": f"{name} ground truth", "opacity": 0.4}
    if features:
        truth["features"] = features  # napari names the class under the cursor
    return [(image, {"name": name}, "image"), (labels, truth, "labels")]


def em_membranes_sample() -> list[LayerData]:
    """A serial-section EM-like stack and its membrane mask (0 = interior, 1 = membrane)."""
    classes = ["interior", "membrane"]  # as the shipped em-membranes model names them
    return _pair("em_membranes", {"index": [0, 1], "class": classes})


def nuclei_sample() -> list[LayerData]:
    """A fluorescence nuclei stack and its instance labels (0 = background, one id per nucleus)."""
    return _pair("nuclei")

"""Scribbles a user might paint: short brush strokes along the middle of each class's regions.

Strokes follow the skeleton of each class (the centre lines of cells, membranes, nuclei and
background), a few pixels wide, in random pieces until the class's share of the budget is
painted. Everything else is ``IGNORE_INDEX``, as in sparse Retrain.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_unet_loop.core.training.losses import IGNORE_INDEX

BUDGET = 0.03  # share of the slice's pixels painted (the loop issue allows at most 5 %)
PIECE = 24  # stroke pieces are the skeleton inside a box of this side


def scribble(truth: np.ndarray, rng: np.random.Generator, budget: float = BUDGET) -> np.ndarray:
    """Int16 labels: ``truth`` on stroke pixels, ``IGNORE_INDEX`` elsewhere."""
    from skimage.morphology import skeletonize

    out = np.full(truth.shape, IGNORE_INDEX, dtype=np.int16)
    classes = list(np.unique(truth))
    share = budget * truth.size / max(len(classes), 1)
    for c in classes:
        mask = truth == c
        inner = ndi.binary_erosion(mask, iterations=2)
        region = inner if inner.sum() > 0.2 * mask.sum() else mask
        # Padded with background, so a class that fills the image still has a centre line.
        skeleton = skeletonize(np.pad(region, 1))[1:-1, 1:-1]
        points = np.argwhere(skeleton)
        painted = 0
        for index in rng.permutation(len(points)):
            if painted >= share:
                break
            y, x = points[index]
            top, left = max(y - PIECE // 2, 0), max(x - PIECE // 2, 0)
            box = np.s_[top : top + PIECE, left : left + PIECE]
            stroke = ndi.binary_dilation(skeleton[box]) & mask[box] & (out[box] == IGNORE_INDEX)
            out[box][stroke] = c
            painted += int(stroke.sum())
    return out

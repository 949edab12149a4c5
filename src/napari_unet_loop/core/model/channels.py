"""The one rule that turns any image a user opens into the channels a model takes.

Segment, Batch, the cluster path and Retrain all call :func:`model_channels`, so every pairing
of grey and colour that Segment accepts, Retrain accepts too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .modelfile import Model


def looks_rgb(image: np.ndarray) -> bool:
    """A single 2D slice with a last axis of 3 or 4 (colour, alpha ignored)."""
    return image.ndim == 3 and image.shape[-1] in (3, 4)


def model_channels(raw: np.ndarray, model: Model, rgb: bool) -> np.ndarray:
    """One raw slice as the channels ``model`` takes, (Y, X) or (Y, X, 3), not yet normalised.

    A 1-channel model given colour sees the mean of R, G and B; a 3-channel model given grey
    sees it replicated.
    """
    image = np.asarray(raw)
    if rgb:
        image = image[..., :3]
        if model.in_channels == 1:
            image = image.astype(np.float32).mean(axis=-1)
    elif model.in_channels == 3:
        image = np.repeat(image[..., None], 3, axis=-1)
    return image

"""npe2 writer: a Labels layer to a compressed TIFF, an OME-TIFF (``.ome.tif``) or an OME-Zarr
label image (``.zarr``), written atomically with its pixel size."""

from __future__ import annotations

from typing import Any

import numpy as np

from .core.io.write import write_labels as write_label_tiff


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Save one Labels layer's data to ``path``; returns the paths written (npe2 convention)."""
    data = np.asarray(data)
    scale = meta.get("scale")
    if scale is not None and (len(scale) != data.ndim or min(scale) <= 0):
        scale = None  # a scale the TIFF header cannot hold is dropped, not an error
    return [str(write_label_tiff(path, data, scale=scale))]

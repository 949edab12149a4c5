"""npe2 writer: a Labels layer to a compressed TIFF, an OME-TIFF (``.ome.tif``) or an OME-Zarr
label image (``.zarr``), written atomically with its pixel size; an OME-Zarr also keeps the
layer's class names (its ``class`` feature) as label properties."""

from __future__ import annotations

from typing import Any

import numpy as np

from .core.io.write import write_labels as save_labels


def class_names(features: Any) -> dict[int, str]:
    """Label value -> class name from a Labels layer's features (``index`` and ``class``
    columns, or the row number as the value); {} when there is no ``class`` column."""
    if features is None or "class" not in getattr(features, "columns", ()):
        return {}
    values = features["index"] if "index" in features.columns else range(len(features))
    return {int(v): str(name) for v, name in zip(values, features["class"], strict=True)}


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Save one Labels layer's data to ``path``; returns the paths written (npe2 convention)."""
    data = np.asarray(data)
    scale = meta.get("scale")
    if scale is not None and (len(scale) != data.ndim or min(scale) <= 0):
        scale = None  # a scale the TIFF header cannot hold is dropped, not an error
    names = class_names(meta.get("features"))
    return [str(save_labels(path, data, scale=scale, class_names=names or None))]

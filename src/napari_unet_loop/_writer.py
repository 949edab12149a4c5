"""npe2 writers: a Labels layer to a compressed TIFF, an OME-TIFF (``.ome.tif``) or an OME-Zarr
label image (``.zarr``), written atomically with its pixel size; an OME-Zarr also keeps the
layer's class names (its ``class`` feature) as label properties. An Image and a Labels layer
saved together to ``.zarr`` become one OME-Zarr image with the labels in its ``labels`` group."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .core.io.units import unit_name
from .core.io.write import write_labels as save_labels


def class_names(features: Any) -> dict[int, str]:
    """Label value -> class name from a Labels layer's features (``index`` and ``class``
    columns, or the row number as the value); {} when there is no ``class`` column."""
    if features is None or "class" not in getattr(features, "columns", ()):
        return {}
    values = features["index"] if "index" in features.columns else range(len(features))
    return {int(v): str(name) for v, name in zip(values, features["class"], strict=True)}


def _scale(meta: dict, ndim: int) -> list[float] | None:
    scale = meta.get("scale")
    if scale is not None and (len(scale) != ndim or min(scale) <= 0):
        return None  # a scale the file's header cannot hold is dropped, not an error
    return scale


def _unit(meta: dict) -> str | None:
    """The unit of the layer's last (x) axis, None for napari's default (pixels)."""
    units = meta.get("units")
    return unit_name(str(units[-1])) if units else None


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Save one Labels layer's data to ``path``; returns the paths written (npe2 convention)."""
    data = np.asarray(data)
    names = class_names(meta.get("features")) or None
    scale = _scale(meta, data.ndim)
    return [str(save_labels(path, data, scale=scale, unit=_unit(meta), class_names=names))]


def write_image_and_labels(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Save an Image and a Labels layer of the same grid as one OME-Zarr image with labels; the
    label image is named after the Labels layer, the pixel size is the Labels layer's."""
    (image, image_meta, _), (labels, meta, _) = sorted(layer_data, key=lambda d: d[2] != "image")
    if image_meta.get("multiscale"):
        image = image[0]  # full resolution
    labels = np.asarray(labels)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(meta.get("name") or "")).strip("._-")
    written = save_labels(
        path,
        labels,
        scale=_scale(meta, labels.ndim),
        unit=_unit(meta),
        class_names=class_names(meta.get("features")) or None,
        image=image,
        rgb=bool(image_meta.get("rgb")),
        name=name or "labels",
    )
    return [str(written)]

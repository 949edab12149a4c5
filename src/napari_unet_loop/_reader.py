"""npe2 reader: TIFF stacks (2D, Z×Y×X, RGB, RGB stacks), zarr arrays and OME-Zarr images as
lazy Image layers with their scale (and its unit where the file gives one); an OME-Zarr image's
label images come along as Labels layers, with their ``image-label`` properties (class names)
as the layer's features; an OME-Zarr of class probabilities opens as one Image layer per class.

A stack goes to napari as it is (a ``core.io.stack.Stack`` is an array napari can slice), so
napari reads only the slices it shows. Not dask: importing dask.array imports xarray and pandas,
seconds on the GUI thread on the first file opened.
Label files (integer values named like labels, or a few values: ``truth.looks_like_labels``)
open as Labels layers, in memory so they can be painted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .app.truth import looks_like_labels
from .core.errors import InputError
from .core.io.read import is_tiff_path, read_stack
from .core.io.read_zarr import (
    channel_image,
    is_label_image,
    is_zarr_path,
    label_features,
    label_images,
)
from .core.io.stack import Stack

LayerData = tuple[Any, dict, str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """The reader for ``path`` (TIFF files, zarr or OME-Zarr), or None when it cannot read it."""
    paths = [path] if isinstance(path, str) else list(path)
    readable = (is_tiff_path, is_zarr_path)
    if not paths or not all(isinstance(p, str) and any(f(p) for f in readable) for p in paths):
        return None
    for p in paths:
        if is_zarr_path(p) and channel_image(p) is not None:
            continue
        try:
            read_stack(p).close()  # checks the header only; pixels are read later, lazily
        except (InputError, OSError):
            return None
    return read_layers


def _channel_layers(path: str) -> list[LayerData]:
    """One Image layer per channel of an OME-Zarr probability image, named after its class."""
    image = channel_image(path)
    if image is None:
        return []
    stem = Path(path).name.removesuffix(".zarr")
    meta = {
        "name": [f"{stem} {name}" for name in image.names],
        "channel_axis": 0,
        "scale": image.scale,
        "contrast_limits": (0.0, 1.0),
        "blending": "additive",
    }
    if image.unit:
        meta["units"] = (image.unit,) * len(image.scale)
    return [(image.array, meta, "image")]


def _lazy(stack: Stack) -> Any:
    """Array for napari: the stack itself, read slice by slice, or numpy for a 2D image."""
    if stack.is_2d or stack.storage == "memory":
        data = stack.to_numpy()
        stack.close()
        return data
    return stack  # stays open: it is the layer's data source from now on


def _is_labels(stack: Stack, name: str) -> bool:
    return not stack.rgb and looks_like_labels(stack[len(stack) // 2], name)


def _stem(path: str) -> str:
    """The file's name without its type: ``cells.ome.tif`` is ``cells``, as ``cells.tif`` is."""
    stem = Path(path).stem
    return stem[: -len(".ome")] if stem.lower().endswith(".ome") else stem


def _placed(name: str, stack: Stack) -> dict:
    """A layer's name, pixel size and, where the file gives it, the size's unit."""
    meta = {"name": name, "scale": stack.scale}
    return {**meta, "units": (stack.unit,) * len(stack.scale)} if stack.unit else meta


def _with_features(meta: dict, path) -> dict:
    features = label_features(path)
    return {**meta, "features": features} if features else meta


def read_layers(path: str | list[str]) -> list[LayerData]:
    """Layer data for each path, named after it: Labels for label files, else an Image (RGB
    where it is colour), then a Labels layer for each label image an OME-Zarr lists (an
    OME-Zarr label image opened on its own is a Labels layer)."""
    layers = []
    for p in [path] if isinstance(path, str) else path:
        if is_zarr_path(p) and (channels := _channel_layers(p)):
            layers += channels
            continue
        stack = read_stack(p)
        zarr = is_zarr_path(p)
        name = Path(p).name.removesuffix(".zarr") if zarr else _stem(p)
        meta = _placed(name, stack)
        if zarr and is_label_image(p):
            layers.append((_lazy(stack), _with_features(meta, p), "labels"))
            continue
        if not zarr and _is_labels(stack, name):
            with stack:
                layers.append((stack.to_numpy(), meta, "labels"))
            continue
        layers.append((_lazy(stack), {**meta, "rgb": stack.rgb}, "image"))
        for labels_path in label_images(p) if zarr else []:
            labels = read_stack(labels_path)
            meta = _placed(f"{name} {labels_path.name}", labels)
            layers.append((_lazy(labels), _with_features(meta, labels_path), "labels"))
    return layers

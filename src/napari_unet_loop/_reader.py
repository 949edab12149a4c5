"""npe2 reader: TIFF stacks (2D, Z×Y×X, RGB, RGB stacks) as lazy Image layers with their scale.

Stacks are wrapped in dask with one chunk per slice, so napari reads only the slices it shows.
Label files (integer values named like labels, or a few values: ``truth.looks_like_labels``)
open as Labels layers, in memory so they can be painted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .core.errors import InputError
from .core.io import Stack, is_tiff_path, read_stack
from .truth import looks_like_labels

LayerData = tuple[Any, dict, str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """The reader for ``path`` (one TIFF file or a list of them), or None when it cannot read it."""
    paths = [path] if isinstance(path, str) else list(path)
    if not paths or not all(isinstance(p, str) and is_tiff_path(p) for p in paths):
        return None
    for p in paths:
        try:
            read_stack(p).close()  # checks the header only; pixels are read later, lazily
        except (InputError, OSError):
            return None
    return read_tiffs


def _lazy(stack: Stack) -> Any:
    """Array for napari: dask with one chunk per slice, or numpy for a single 2D image."""
    if stack.is_2d or stack.storage == "memory":
        data = stack.to_numpy()
        stack.close()
        return data
    import dask.array as da

    # The Stack stays open: it is the layer's data source from now on.
    return da.from_array(stack, chunks=(1, *stack.slice_shape), asarray=True, name=False)


def _is_labels(stack: Stack, name: str) -> bool:
    return not stack.rgb and looks_like_labels(stack[len(stack) // 2], name)


def read_tiffs(path: str | list[str]) -> list[LayerData]:
    """Layer data for each TIFF, named after the file: Labels for label files, else an Image
    (RGB where it is colour)."""
    layers = []
    for p in [path] if isinstance(path, str) else path:
        stack = read_stack(p)
        name = Path(p).stem
        if _is_labels(stack, name):
            with stack:
                layers.append((stack.to_numpy(), {"name": name, "scale": stack.scale}, "labels"))
            continue
        meta = {"name": name, "scale": stack.scale, "rgb": stack.rgb}
        layers.append((_lazy(stack), meta, "image"))
    return layers

"""npe2 reader: TIFF stacks (2D, Z×Y×X, RGB, RGB stacks) as lazy Image layers with their scale.

Stacks are wrapped in dask with one chunk per slice, so napari reads only the slices it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .core.errors import InputError
from .core.io import Stack, is_tiff_path, read_stack

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


def read_tiffs(path: str | list[str]) -> list[LayerData]:
    """Layer data for each TIFF: an Image layer named after the file, RGB where it is colour."""
    layers = []
    for p in [path] if isinstance(path, str) else path:
        stack = read_stack(p)
        meta = {"name": Path(p).stem, "scale": stack.scale, "rgb": stack.rgb}
        layers.append((_lazy(stack), meta, "image"))
    return layers

"""A lazily read image or stack: the object every reader returns, one slice at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np


class Stack:
    """A 2D image or a stack of 2D slices, read from disk one slice at a time.

    Shapes: ``shape`` is the data as the user sees it: ``(Y, X)`` or ``(Y, X, 3)`` for a single
    image, ``(Z, Y, X)`` or ``(Z, Y, X, 3)`` for a stack. Indexing, ``len`` and iteration always
    go by slice, so a single 2D image is a stack of one: ``len(s) == 1`` and ``s[0]`` is the
    whole image (``is_2d`` tells the two apart). ``s[z]`` reads slice ``z`` as a numpy array of
    shape ``slice_shape``; ``s[a:b]`` reads several into one array; a tuple index selects slices
    with its first element and applies the rest to them (numpy semantics for a Z×Y×X stack).

    ``scale`` has one pixel size per spatial axis of ``shape`` (the RGB axis has none): 2 values
    for a 2D image, 3 for a stack, in ``unit`` (an OME-Zarr unit name, ``core.io.units``; None
    where the file gives none), 1.0 where unknown.
    ``storage`` says how slices are read: ``"raw"`` (uncompressed TIFF, each slice read from
    its file offset), ``"memmap"`` (uncompressed, slices not contiguous: memory-mapped),
    ``"zarr"`` (a zarr array),
    ``"pages"`` (one TIFF page per slice, decoded on demand), ``"files"`` (a folder, one file
    per slice) or ``"memory"`` (loaded whole because the layout does not allow reading a slice
    alone; small non-TIFF images).
    """

    def __init__(
        self,
        path: Path,
        *,
        num_slices: int,
        slice_shape: tuple[int, ...],
        dtype: np.dtype,
        read_slice: Callable[[int], np.ndarray],
        is_2d: bool,
        scale: tuple[float, ...],
        storage: str,
        on_close: Callable[[], None] | None = None,
        unit: str | None = None,
    ) -> None:
        self.path = path
        self.slice_shape = tuple(slice_shape)
        self.dtype = np.dtype(dtype)
        self.is_2d = is_2d
        self.scale = scale
        self.unit = unit
        self.storage = storage
        self._num_slices = num_slices
        self._read_slice: Callable[[int], np.ndarray] | None = read_slice
        self._on_close = on_close

    @property
    def shape(self) -> tuple[int, ...]:
        """The data as the user sees it: no slice axis for a single 2D image."""
        return self.slice_shape if self.is_2d else (self._num_slices, *self.slice_shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def rgb(self) -> bool:
        return len(self.slice_shape) == 3

    def __len__(self) -> int:
        return self._num_slices

    def _read(self, z: int) -> np.ndarray:
        if self._read_slice is None:
            raise ValueError(f"{self.path}: stack is closed")
        return self._read_slice(z)

    def _slice_index(self, z: int) -> int:
        n = self._num_slices
        if not -n <= z < n:
            raise IndexError(f"slice {z} out of range for a stack of {n}")
        return int(z) % n

    def __getitem__(self, index: int | slice | tuple) -> np.ndarray:
        index = self._without_ellipsis(index)
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) and index else (index, ())
        if isinstance(first, (int, np.integer)):
            data = self._read(self._slice_index(first))
        elif isinstance(first, slice):
            zs = range(*first.indices(self._num_slices))
            data = np.empty((len(zs), *self.slice_shape), self.dtype)
            for i, z in enumerate(zs):
                data[i] = self._read(z)
            rest = (slice(None), *rest)
        else:
            raise TypeError(f"stack indices must be an int, a slice or a tuple, not {index!r}")
        return data[rest]

    def _without_ellipsis(self, index):
        """``...`` spelled out as full slices (napari indexes layer data with it)."""
        items = index if isinstance(index, tuple) else (index,)
        if not any(item is Ellipsis for item in items):
            return index
        at = next(i for i, item in enumerate(items) if item is Ellipsis)
        full = (slice(None),) * (self.ndim - len(items) + 1)
        return (*items[:at], *full, *items[at + 1 :])

    def __iter__(self) -> Iterator[np.ndarray]:
        for z in range(self._num_slices):
            yield self._read(z)

    def to_numpy(self) -> np.ndarray:
        """Read everything into one array of shape ``shape``."""
        data = self[:]
        return data[0] if self.is_2d else data

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self.to_numpy()
        return data if dtype is None else data.astype(dtype, copy=False)

    def close(self) -> None:
        """Release the file; reading afterwards is an error."""
        self._read_slice = None
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Stack({self.path.name!r}, shape={self.shape}, dtype={self.dtype}, "
            f"scale={self.scale}, storage={self.storage!r})"
        )

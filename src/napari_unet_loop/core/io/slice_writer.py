"""What every label writer shares: the output checks, the ``with`` protocol and the commit."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

from ..errors import InputError
from .read import is_tiff_path
from .read_zarr import SUFFIX as ZARR_SUFFIX
from .units import DEFAULT_UNIT, unit_name

# zarr chunks: one slice deep, at most this many pixels on a side.
ZARR_CHUNK_SIDE = 1024


def check_writable(path: Path) -> None:
    if not (is_tiff_path(path) or path.suffix.lower() == ZARR_SUFFIX):
        raise InputError(
            f"{path}: labels are saved as TIFF or zarr; use a .tif, .tiff or .zarr name"
        )
    if path.suffix.lower() != ZARR_SUFFIX and path.is_dir():
        raise InputError(f"{path}: is a folder, not a file name")
    if path.suffix.lower() == ZARR_SUFFIX and path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file; a zarr output is a folder")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{path}: cannot write, folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write, permission denied in folder {folder}")


def _check_scale(scale: Sequence[float] | None) -> tuple[float, ...] | None:
    if scale is None:
        return None
    scale = tuple(float(s) for s in scale)
    if len(scale) not in (2, 3) or not all(np.isfinite(s) and s > 0 for s in scale):
        raise ValueError(f"scale must be 2 or 3 positive numbers (Z, Y, X), got {scale}")
    return scale


class SliceWriter:
    """What the TIFF and zarr writers share: checks, the ``with`` protocol and the commit.

    Use a writer as a context manager::

        with open_label_writer("labels.tif", scale=stack.scale) as writer:
            for labels in slices:
                writer.write(labels)

    An exception in the block (KeyboardInterrupt too) or :meth:`abort` discards everything
    written. An output that cannot be written is an InputError at construction, before any
    work. ``shape`` is the whole output, (Y, X) or (Z, Y, X), when known in advance; ``unit``
    is that of ``scale`` (the input's ``Stack.unit``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        scale: Sequence[float] | None = None,
        unit: str | None = None,
        dtype: DTypeLike = np.uint8,
        shape: Sequence[int] | None = None,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "uif":
            raise ValueError(f"slices must be saved as an integer or float type, not {self.dtype}")
        self.scale = _check_scale(scale)
        # the pixel size's unit (core.io.units; micrometres when not given)
        self.unit = unit_name(unit) or DEFAULT_UNIT
        self.shape = None if shape is None else tuple(int(n) for n in shape)
        check_writable(self.path)
        self.slices_written = 0
        self._open = False
        self._slice_shape: tuple[int, ...] | None = None
        self._range = (0, 0)

    @property
    def num_slices(self) -> int | None:
        """How many slices the output will hold, when ``shape`` was given."""
        if self.shape is None:
            return None
        return 1 if len(self.shape) == 2 else self.shape[0]

    def __enter__(self) -> SliceWriter:
        self._start()
        self._open = True
        return self

    def write(self, labels: np.ndarray) -> None:
        """Append one 2D slice (integer values that fit ``dtype``, or any values for floats)."""
        if not self._open:
            raise RuntimeError(f"{type(self).__name__}.write needs an open writer (use `with`)")
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise InputError(f"{self.path}: a label slice must be 2D, got shape {labels.shape}")
        expected = self._slice_shape or (self.shape[-2:] if self.shape else None)
        if expected is not None and labels.shape != expected:
            raise InputError(
                f"{self.path}: slice {self.slices_written} has shape {labels.shape}, "
                f"expected {expected}"
            )
        if self.num_slices is not None and self.slices_written >= self.num_slices:
            raise InputError(f"{self.path}: more than the {self.num_slices} slices announced")
        low, high = (labels.min().item(), labels.max().item()) if labels.size else (0, 0)
        if self.dtype.kind != "f":
            if labels.dtype.kind not in "uib":
                raise InputError(f"{self.path}: labels must be integers, got {labels.dtype}")
            info = np.iinfo(self.dtype)
            if low < info.min or high > info.max:
                raise InputError(
                    f"{self.path}: label values {low}..{high} do not fit {self.dtype.name}"
                )
        self._slice_shape = labels.shape
        self._range = (min(self._range[0], low), max(self._range[1], high))
        self._append(labels.astype(self.dtype, copy=False))
        self.slices_written += 1

    def abort(self) -> None:
        """Discard everything written; nothing appears under ``path``."""
        self._open = False
        self._discard()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._open:
            self.abort()
            return
        self._open = False
        try:
            if self.slices_written == 0:
                raise ValueError(f"{self.path}: no label slices were written")
            if self.num_slices is not None and self.slices_written != self.num_slices:
                raise InputError(
                    f"{self.path}: {self.slices_written} of {self.num_slices} slices written"
                )
            self._commit()
        except BaseException:
            self._discard()
            raise

    # What each format does: open a temporary output, append a slice, move it into place,
    # and discard it (which must be safe to call twice).
    def _start(self) -> None:
        raise NotImplementedError

    def _append(self, labels: np.ndarray) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError

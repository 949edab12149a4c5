"""Write label images atomically, slice by slice: compressed TIFF (BigTIFF when large) or zarr.

Writers stream slices into a hidden temporary file (or folder, for zarr) beside the output,
which gets its final name only when every slice was written: an interrupted run never leaves
a half-written output, and an existing one stays untouched until the new one is complete.
TIFFs carry ImageJ metadata, so the pixel size survives a round trip. ``open_label_writer``
picks the writer from the output name; ``write_labels`` saves a whole array.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError, one_line
from .atomic import commit, commit_folder, discard, temporary_beside, temporary_folder_beside
from .read_zarr import SUFFIX as ZARR_SUFFIX
from .slice_writer import ZARR_CHUNK_SIDE, SliceWriter, check_writable
from .units import imagej_word, ome_tiff_symbol
from .zarr_pending import start_zarr_loop, wait_for_zarr_writes

# Labels are stored in the smallest of these that holds every value.
_UNSIGNED_LABEL_DTYPES = (np.uint8, np.uint16, np.uint32)
_SIGNED_LABEL_DTYPES = (np.int16, np.int32)

# A classic TIFF addresses 4 GiB; above this much pixel data (compression can grow data that
# does not compress, and the page directories need room too) the file is written as BigTIFF.
BIGTIFF_ABOVE = 2**32 - 2**28


class LabelWriter(SliceWriter):
    """Write label slices (or, with a float dtype, probabilities) into a compressed TIFF.

    Slices go to a hidden ``.<name>.*.tmp`` file in the output folder, renamed to ``path`` at
    the end of the ``with`` block. A single slice is saved as a 2D image (YX), several as a
    stack (ZYX), with ImageJ metadata (Z spacing, X/Y resolution from ``scale``, its ``unit``)
    so :func:`read_stack` restores the scale. When ``shape`` says the pixel data will pass
    4 GiB the file is a BigTIFF (which ImageJ opens through Bio-Formats).
    """

    def __init__(
        self, path, *, compression: str | None = "zlib", channels: int = 1, **options
    ) -> None:
        super().__init__(path, **options)
        self.compression = compression
        self.channels = channels  # planes per slice (probabilities: one per class)
        self._tmp: Path | None = None
        self._writer: tifffile.TiffWriter | None = None

    @property
    def bigtiff(self) -> bool:
        if self.shape is None:
            return False
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize > BIGTIFF_ABOVE

    def _start(self) -> None:
        try:
            self._tmp = temporary_beside(self.path)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write ({one_line(exc)})") from None
        try:
            self._writer = tifffile.TiffWriter(self._tmp, bigtiff=self.bigtiff)
        except BaseException:
            self._discard()
            raise

    def _append(self, labels: np.ndarray) -> None:
        resolution = None if self.scale is None else (1 / self.scale[-1], 1 / self.scale[-2])
        self._writer.write(
            labels,
            photometric="minisblack",
            compression=self.compression,
            resolution=resolution,
            resolutionunit=tifffile.RESUNIT.NONE,
            metadata=None,
            # A placeholder on the first page; replaced by the final ImageJ header on close.
            description="ImageJ=1.11a\n" if self.slices_written == 0 else None,
        )

    def _description(self) -> str | bytes:
        """The ImageJ header for what was written (a stack header only for several slices)."""
        lines = ["ImageJ=1.11a"]
        slices = self.slices_written // self.channels
        if self.slices_written > 1:
            lines.append(f"images={self.slices_written}")
            if self.channels > 1:
                # ImageJ's order is channels fastest: slice 0's classes, then slice 1's...
                lines += [f"channels={self.channels}", "hyperstack=true", "mode=grayscale"]
            lines.append(f"slices={slices}")
        if self.scale is not None:
            lines.append(f"unit={imagej_word(self.unit)}")
            if slices > 1 and len(self.scale) == 3:
                lines.append(f"spacing={self.scale[0]!r}")
        # A display range that spans the labels, so ImageJ does not show them all black.
        lines += [f"min={self._range[0]}", f"max={self._range[1]}"]
        return "\n".join(lines) + "\n"

    def _commit(self) -> None:
        writer, self._writer = self._writer, None
        writer.close()
        tifffile.tiffcomment(self._tmp, self._description())
        commit(self._tmp, self.path)
        self._tmp = None

    def _discard(self) -> None:
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                writer.close()
        finally:
            if self._tmp is not None:
                discard(self._tmp)
                self._tmp = None


class OmeTiffWriter(LabelWriter):
    """Like :class:`LabelWriter`, with an OME-XML header instead of ImageJ's: named axes (YX or
    ZYX, C first for several planes per slice) and physical pixel sizes with their unit, as
    Bio-Formats, QuPath and Fiji read them."""

    def _description(self) -> bytes:
        import tifffile

        slices = self.slices_written // self.channels
        shape = tuple(n for n in (slices, self.channels) if n > 1) + self._slice_shape
        axes = ("Z" if slices > 1 else "") + ("C" if self.channels > 1 else "") + "YX"
        sizes = {}
        if self.scale is not None:
            for axis, size in zip("ZYX"[-len(self.scale) :], self.scale, strict=True):
                if axis in axes:
                    unit = ome_tiff_symbol(self.unit)
                    sizes |= {f"PhysicalSize{axis}": size, f"PhysicalSize{axis}Unit": unit}
        xml = tifffile.OmeXml()
        xml.addimage(
            self.dtype,
            shape,
            (self.slices_written, 1, 1, *self._slice_shape, 1),
            axes=axes,
            **sizes,
        )
        return xml.tostring().encode()  # UTF-8: the unit may be µm or Å


def is_ome_tiff_path(path: str | os.PathLike) -> bool:
    """An ``.ome.tif`` / ``.ome.tiff`` name."""
    return Path(path).name.lower().endswith((".ome.tif", ".ome.tiff"))


class ZarrWriter(SliceWriter):
    """Write label slices into a zarr array (a folder), one chunk row per slice.

    ``shape`` is required: zarr arrays are created at their full size. The array is built in a
    hidden ``.<name>.*.tmp`` folder beside ``path`` and renamed into place when complete; a
    2D ``shape`` gives a 2D array. The pixel size goes into the array's attributes.
    """

    def __init__(self, path, **options) -> None:
        super().__init__(path, **options)
        if self.shape is None:
            raise ValueError("a zarr output needs its shape in advance")
        self._tmp: Path | None = None
        self._array = None

    def _start(self) -> None:
        import zarr

        start_zarr_loop()

        try:
            self._tmp = temporary_folder_beside(self.path)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write ({one_line(exc)})") from None
        side = (min(n, ZARR_CHUNK_SIDE) for n in self.shape[-2:])
        chunks = (*(1,) * (len(self.shape) - 2), *side)
        try:
            self._array = zarr.create_array(
                store=str(self._tmp),
                shape=self.shape,
                chunks=chunks,
                dtype=self.dtype,
                fill_value=0,
                attributes=zarr_attributes(self.scale, self.unit),
            )
        except BaseException:
            self._discard()
            raise

    def _append(self, labels: np.ndarray) -> None:
        if len(self.shape) == 2:
            self._array[...] = labels
        else:
            self._array[self.slices_written] = labels

    def _commit(self) -> None:
        commit_folder(self._tmp, self.path)
        self._tmp = self._array = None

    def _discard(self) -> None:
        self._array = None
        if self._tmp is not None:
            wait_for_zarr_writes()
            discard(self._tmp)
            self._tmp = None


def zarr_attributes(scale: Sequence[float] | None, unit: str | None = None) -> dict:
    """The attributes a written zarr array carries (read back by ``core.io.read_zarr``)."""
    if scale is None:
        return {}
    return {"napari_unet_loop": {"scale": list(scale), **({"unit": unit} if unit else {})}}


def open_label_writer(
    path: str | os.PathLike,
    *,
    image=None,
    rgb: bool = False,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    name: str = "labels",
    version: str = "0.4",
    channels: int = 1,
    **options,
) -> SliceWriter:
    """The writer for ``path``'s name: OME-Zarr labels for ``.zarr`` (an OME-Zarr image with a
    channel axis for probabilities, a plain zarr array for other float data), OME-TIFF for
    ``.ome.tif``, else ImageJ TIFF.

    ``image`` (the input, with ``rgb``), ``class_names``, ``name`` and the NGFF ``version``
    describe the labels for OME-Zarr (see ``core.io.write_ome_zarr.OmeZarrWriter``); the TIFF
    writers do not use them.
    ``channels`` planes per slice (probabilities, named by ``class_names``) become a channel
    axis: in a TIFF's header, or the ``c`` axis of an OME-Zarr image.
    """
    path = Path(path)
    dtype = np.dtype(options.get("dtype", np.uint8))
    if path.suffix.lower() == ZARR_SUFFIX:
        if dtype.kind == "f" and channels > 1:
            from .write_ome_zarr import OmeZarrChannelsWriter

            names = list(class_names) if isinstance(class_names, Sequence) else None
            return OmeZarrChannelsWriter(
                path, channels=channels, channel_names=names, version=version, **options
            )
        if dtype.kind == "f":
            return ZarrWriter(path, **options)
        from .write_ome_zarr import OmeZarrWriter

        return OmeZarrWriter(
            path,
            image=image,
            rgb=rgb,
            class_names=class_names,
            name=name,
            version=version,
            **options,
        )
    if is_ome_tiff_path(path):
        return OmeTiffWriter(path, channels=channels, **options)
    return LabelWriter(path, channels=channels, **options)


def _label_dtype(path: Path, low: int, high: int) -> np.dtype:
    candidates = _UNSIGNED_LABEL_DTYPES if low >= 0 else _SIGNED_LABEL_DTYPES
    for dtype in candidates:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    raise InputError(f"{path}: label values {low}..{high} are too large to save")


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    scale: Sequence[float] | None = None,
    unit: str | None = None,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    image=None,
    rgb: bool = False,
    name: str = "labels",
) -> Path:
    """Save a 2D label image or a Z×Y×X label stack atomically (TIFF, OME-TIFF or OME-Zarr by
    its name), with the pixel size ``scale`` in ``unit`` (micrometres when not given); an
    OME-Zarr label image names ``class_names`` in its properties. With ``image``
    (same Y×X and Z, colour last when ``rgb``), an OME-Zarr is that image with the labels at
    ``labels/<name>``; a TIFF does not store it.

    The file type is the smallest of uint8, uint16, uint32 (int16, int32 with negative values)
    that holds every label.
    """
    path = Path(path).expanduser().absolute()
    check_writable(path)
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise InputError(f"{path}: labels must be 2D or 3D (Z, Y, X), got shape {labels.shape}")
    if labels.dtype.kind not in "uib":
        raise InputError(f"{path}: labels must be integers, got {labels.dtype}")
    low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    dtype = _label_dtype(path, low, high)
    options = {"scale": scale, "unit": unit, "dtype": dtype, "shape": labels.shape}
    options["class_names"] = class_names
    with open_label_writer(path, image=image, rgb=rgb, name=name, **options) as writer:
        for labels_slice in labels.reshape(-1, *labels.shape[-2:]):
            writer.write(labels_slice)
    return path

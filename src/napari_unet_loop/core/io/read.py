"""Read image stacks lazily, one slice at a time.

Readers accept a TIFF / OME-TIFF / ImageJ TIFF file (2D, Z×Y×X, RGB Y×X×3, RGB stack Z×Y×X×3),
a zarr array or OME-Zarr image (see ``core.io.read_zarr``), any 2D image imageio can read (PNG...),
or a folder of same-sized 2D images. ``read_stack`` returns a :class:`Stack` that reads one
slice at a time, so a stack larger than memory is processed in constant memory. Writing is in
``core.io.write``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from xml.etree import ElementTree

import imageio.v3 as iio
import numpy as np
import tifffile

from ..errors import InputError, one_line
from .read_zarr import is_zarr_path, open_zarr
from .stack import Stack
from .units import DEFAULT_UNIT, unit_name

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (*TIFF_SUFFIXES, ".png")

# tifffile reports a damaged file (a broken page chain, OME planes missing) only as a log
# warning, then reads on with fewer slices or zero-filled ones: these make such a file an error.
_DAMAGE = ("invalid page offset", "series is missing", "failed to reshape", "truncated", "corrupt")


class _TifffileWarnings(logging.Filter):
    """Diverts tifffile's log warnings, in the threads reading with us, into a list."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        collected = getattr(self.local, "messages", None)
        if collected is None:
            return True
        # "<tifffile.TiffPages @8> invalid page offset 4364": keep the part after the object
        collected.append(re.sub(r"^<[^>]*>\s*", "", record.getMessage()).strip())
        return False


_TIFFFILE_LOG = _TifffileWarnings()
logging.getLogger("tifffile").addFilter(_TIFFFILE_LOG)


@contextmanager
def _tiff_checked(path: Path, what: str) -> Iterator[None]:
    """Turn tifffile's warnings about damage, and its errors, into one InputError line.

    Other warnings are dropped: the read either works or its error says what went wrong.
    """
    outer = getattr(_TIFFFILE_LOG.local, "messages", None)
    messages: list[str] = []
    _TIFFFILE_LOG.local.messages = messages
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        error: Exception | None = exc
    else:
        error = None
    finally:
        _TIFFFILE_LOG.local.messages = outer
    damage = [m for m in messages if any(word in m.lower() for word in _DAMAGE)]
    if damage:
        raise InputError(f"{path}: damaged or truncated TIFF ({damage[0]})")
    if error is not None:
        raise InputError(f"{path}: {what} ({one_line(error)})") from None


def is_tiff_path(path: str | os.PathLike) -> bool:
    """True when ``path`` has a TIFF suffix (``.tif`` / ``.tiff``, any case, OME included)."""
    return Path(path).suffix.lower() in TIFF_SUFFIXES


def _natural_key(path: Path) -> tuple:
    # Alternating text / number parts, so "2.tif" sorts before "10.tif".
    parts = re.split(r"(\d+)", path.name.lower())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), path.name


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The ``.tif`` / ``.tiff`` / ``.png`` files in ``folder``, in natural sort order.

    Hidden files (a leading ``.``, e.g. a :class:`LabelWriter` temporary file) are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=_natural_key)


def _clean_size(value: float | None) -> float:
    """A positive pixel size, or 1.0 when unknown or nonsensical."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 1.0
    if not np.isfinite(value) or value <= 0:
        return 1.0
    # Sizes stored as TIFF rationals come back as e.g. 0.30000000004; 9 digits undoes that.
    return float(f"{value:.9g}")


def _native(array: np.ndarray) -> np.ndarray:
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _in_user_order(array, axes: str, *, rgb: bool):
    """Transpose ``array`` with ``axes`` (letters from tifffile) to [lead] Y X [S]; RGB(A)→RGB."""
    order = [i for i, a in enumerate(axes) if a not in "YXS"]
    order += [axes.index(a) for a in "YXS" if a in axes]
    array = array.transpose(order)
    return array[..., :3] if rgb else array


def _tiff_scale(tif: tifffile.TiffFile, is_2d: bool) -> tuple[tuple[float, ...], str | None]:
    """Pixel sizes (Z, Y, X or Y, X; 1.0 where unknown) and their unit (None: no sizes)."""
    z = y = x = unit = None
    if tif.is_ome:
        try:
            pixels = ElementTree.fromstring(tif.ome_metadata).find(".//{*}Image/{*}Pixels")
        except ElementTree.ParseError:
            pixels = None
        if pixels is not None:
            z, y, x = (pixels.get(f"PhysicalSize{a}") for a in "ZYX")
            unit = pixels.get("PhysicalSizeXUnit", "µm")  # OME's default
    elif tif.is_imagej:
        z = (tif.imagej_metadata or {}).get("spacing")
        x_res, y_res = tif.pages[0].resolution
        x = 1.0 / x_res if x_res else None
        y = 1.0 / y_res if y_res else None
        unit = (tif.imagej_metadata or {}).get("unit", "micron")
    sizes = tuple(_clean_size(v) for v in ((y, x) if is_2d else (z, y, x)))
    known = set(sizes) != {1.0}
    return sizes, (unit_name(unit) or DEFAULT_UNIT) if known else None


def _plane_reader(
    path: Path,
    offset: int,
    dtype: np.dtype,
    plane_shape: tuple[int, ...],
    plane_axes: str,
    rgb: bool,
) -> tuple[Callable[[int], np.ndarray], Callable[[], None]]:
    """Read slice ``z``: ``plane_shape`` values of ``dtype`` at ``offset + z * size``.

    Returns the reader and the function that closes its file.
    """
    fd = os.open(path, os.O_RDONLY)
    count = int(np.prod(plane_shape))
    size = count * dtype.itemsize

    def read_plane(z: int) -> np.ndarray:
        buffer = os.pread(fd, size, offset + z * size)  # thread-safe: no shared file position
        if len(buffer) != size:
            raise InputError(f"{path}: file ends inside slice {z}; is it truncated?")
        plane = np.frombuffer(buffer, dtype, count).reshape(plane_shape)
        return _in_user_order(plane, plane_axes, rgb=rgb).astype(dtype.newbyteorder("="))

    return read_plane, lambda: os.close(fd)


def _open_tiff(path: Path) -> Stack:
    with _tiff_checked(path, "not a readable TIFF image"):
        tif = tifffile.TiffFile(path)
    try:
        with _tiff_checked(path, "not a readable TIFF image"):
            return _tiff_stack(path, tif)
    except BaseException:
        tif.close()
        raise


def _samples_are_slices(tif: tifffile.TiffFile, axes: str, shape: tuple[int, ...]) -> bool:
    """True for a (3 or 4, Y, X) array that tifffile stored as planar RGB(A), its default.

    ``tifffile.imwrite`` stores any (3, Y, X) or (4, Y, X) array as colour planes and records
    the array's shape in its "shaped" description. That shape is the one the user wrote, and the
    one napari's own reader opens: a stack of 3 or 4 grey slices, not one colour image. Planar
    colour from other software has no such description and stays colour.
    """
    if axes != "SYX" or not tif.is_shaped:
        return False
    written = (tif.shaped_metadata or ({},))[0].get("shape")
    return isinstance(written, list) and tuple(written) == shape


def _tiff_stack(path: Path, tif: tifffile.TiffFile) -> Stack:
    if not tif.series:
        raise InputError(f"{path}: TIFF file without image data")
    series = tif.series[0]
    axes, shape = series.axes, tuple(series.shape)
    if _samples_are_slices(tif, axes, shape):
        axes = "Z" + axes[1:]  # each colour plane is stored whole, as a slice would be
    lead = [a for a in axes if a not in "YXS"]
    sizes = dict(zip(axes, shape, strict=True))
    samples = sizes.get("S", 1)
    if "Y" not in axes or "X" not in axes or len(lead) > 1 or samples not in (1, 3, 4):
        raise InputError(
            f"{path}: unsupported image layout {axes} {shape}; expected YX, ZYX, "
            "YX + RGB or ZYX + RGB"
        )
    rgb = samples in (3, 4)
    is_2d = not lead
    num_slices = 1 if is_2d else sizes[lead[0]]
    slice_axes = "".join(a for a in axes if a in "YXS")
    slice_shape = (sizes["Y"], sizes["X"], *((3,) if rgb else ()))
    dtype = np.dtype(series.dtype).newbyteorder("=")
    scale, unit = _tiff_scale(tif, is_2d)

    def stack(read_slice, storage, on_close=None) -> Stack:
        return Stack(
            path,
            num_slices=num_slices,
            slice_shape=slice_shape,
            dtype=dtype,
            read_slice=read_slice,
            is_2d=is_2d,
            scale=scale,
            storage=storage,
            on_close=on_close,
            unit=unit,
        )

    file_dtype = np.dtype(tif.byteorder + series.dtype.char)
    if series.dataoffset is not None and (is_2d or axes[0] in lead):
        # Uncompressed, slices contiguous: read each with pread. A memory map would be simpler,
        # but every page it touches counts in the process's resident memory until unmapped,
        # so a stack larger than RAM would look like (and be accounted as) a memory leak.
        tif.close()
        plane = 0 if is_2d else 1  # the axes of one slice
        read_slice, close = _plane_reader(
            path, series.dataoffset, file_dtype, shape[plane:], axes[plane:], rgb
        )
        return stack(read_slice, "raw", close)
    if series.dataoffset is not None:
        # Uncompressed but interleaved across slices (rare): map the file instead.
        mapped = np.memmap(path, dtype=file_dtype, mode="r", offset=series.dataoffset, shape=shape)
        tif.close()
        data = _in_user_order(mapped, axes, rgb=rgb)
        return stack(lambda z: _native(np.array(data[z])), "memmap")

    pages = list(series.pages)
    if None in pages or len(pages) < series.size // max(1, int(np.prod(pages[0].shape))):
        raise InputError(f"{path}: damaged or truncated TIFF (image planes are missing)")
    key = series.keyframe
    if len(pages) == num_slices and None not in pages and sorted(key.axes) == sorted(slice_axes):

        def read_page(z: int) -> np.ndarray:
            with _tiff_checked(path, f"cannot read slice {z}"):
                page = pages[z].asarray()
            return _native(_in_user_order(page, key.axes, rgb=rgb))

        # Slices may be read from a worker thread while the viewer reads others.
        tif.filehandle.set_lock(True)
        return stack(read_page, "pages", tif.close)

    # Several slices share a page (or tiles span slices): decode everything once.
    try:
        with _tiff_checked(path, "cannot read image data"):
            data = _native(_in_user_order(series.asarray(), axes, rgb=rgb))
    finally:
        tif.close()
    data = data[np.newaxis] if is_2d else data
    return stack(lambda z: data[z].copy(), "memory")


def _image_error(path: Path, exc: BaseException) -> InputError:
    return InputError(f"{path}: not a readable image ({one_line(exc)})")


def _drop_alpha(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape after ``_fix_channels``: gray (+alpha) → (Y, X), RGB (+alpha) → (Y, X, 3)."""
    if len(shape) == 3 and shape[2] in (1, 2):
        return shape[:2]
    if len(shape) == 3 and shape[2] == 4:
        return (*shape[:2], 3)
    return shape


def _fix_channels(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] in (1, 2):
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] == 4:
        return image[..., :3]
    return image


def _check_plane_shape(path: Path, shape: tuple[int, ...]) -> None:
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 3)):
        raise InputError(f"{path}: unsupported image shape {shape}; expected Y×X or Y×X×3 (RGB)")


def _is_palette(path: Path) -> bool:
    # Palette PNGs are usually label masks: keep the indices instead of the colours.
    return iio.immeta(path).get("mode") == "P"


def _other_info(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a non-TIFF image as it will be read, from its header only."""
    try:
        props = iio.improps(path)
        palette = _is_palette(path)
    except Exception as exc:
        raise _image_error(path, exc) from None
    if palette:
        return tuple(props.shape[:2]), np.dtype(np.uint8)
    shape = _drop_alpha(tuple(props.shape))
    _check_plane_shape(path, shape)
    return shape, np.dtype(props.dtype)


def _read_other(path: Path) -> np.ndarray:
    """A non-TIFF 2D image (PNG...) read whole with imageio."""
    try:
        image = iio.imread(path, mode="P" if _is_palette(path) else None)
    except Exception as exc:
        raise _image_error(path, exc) from None
    image = _fix_channels(np.asarray(image))
    _check_plane_shape(path, image.shape)
    return image


def _open_other(path: Path) -> Stack:
    image = _read_other(path)
    return Stack(
        path,
        num_slices=1,
        slice_shape=image.shape,
        dtype=image.dtype,
        read_slice=lambda z: image.copy(),
        is_2d=True,
        scale=(1.0, 1.0),
        storage="memory",
    )


def _plane_info(path: Path) -> tuple[tuple[int, ...], np.dtype, tuple[float, ...], str | None]:
    """Slice shape, dtype, scale and unit of one 2D image in a folder, without reading its
    pixels."""
    if not is_tiff_path(path):
        shape, dtype = _other_info(path)
        return shape, dtype, (1.0, 1.0), None
    with _open_tiff(path) as image:
        if not image.is_2d:
            raise InputError(
                f"{path}: is a stack of {len(image)} slices; a folder must hold 2D images only"
            )
        return image.slice_shape, image.dtype, image.scale, image.unit


def _open_folder(folder: Path) -> Stack:
    files = list_images(folder)
    if not files:
        raise InputError(f"{folder}: folder contains no .tif, .tiff or .png images")
    shape, dtype, scale, unit = _plane_info(files[0])
    for path in files[1:]:
        other_shape, other_dtype = _plane_info(path)[:2]
        if (other_shape, other_dtype) != (shape, dtype):
            raise InputError(
                f"{path}: {other_shape} {other_dtype} differs from {files[0].name} "
                f"({shape} {dtype}); all images in a folder must match"
            )

    def read_file(z: int) -> np.ndarray:
        image = read_image(files[z])
        if image.shape != shape or image.dtype != dtype:
            raise InputError(f"{files[z]}: changed since the folder was opened")
        return image

    return Stack(
        folder,
        num_slices=len(files),
        slice_shape=shape,
        dtype=dtype,
        read_slice=read_file,
        is_2d=False,
        scale=(1.0, *scale),
        storage="files",
        unit=unit,
    )


def read_stack(path: str | os.PathLike) -> Stack:
    """Open a TIFF file, another 2D image file or a folder of 2D images as a lazy :class:`Stack`.

    Raises InputError when the path is missing, is not an image, or has a layout other than
    2D, Z×Y×X, RGB or RGB stack.
    """
    path = Path(path).expanduser()
    if is_zarr_path(path):
        return open_zarr(path)
    if path.is_dir():
        return _open_folder(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    return _open_tiff(path) if is_tiff_path(path) else _open_other(path)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a whole image or stack into memory (shape as :attr:`Stack.shape`)."""
    with read_stack(path) as stack:
        return stack.to_numpy()


def read_scale(path: str | os.PathLike) -> tuple[float, ...]:
    """The pixel size per spatial axis of an image (see :attr:`Stack.scale`)."""
    with read_stack(path) as stack:
        return stack.scale

"""Write labels as OME-Zarr (NGFF 0.4 or 0.5): an image group with a ``labels/<name>`` label image;
and class probabilities as an OME-Zarr image with a channel axis.

With the input image at hand (``image=``) the output is the layout every NGFF tool reads: the
image at ``0`` in the root group and the labels at ``labels/<name>/0``, both with named axes,
units and the pixel size as a scale transform. Without it (a Labels layer saved from napari) the
root group is the label image itself. Class names and colours go into the ``image-label``
metadata. NGFF 0.4 is a zarr v2 store with the metadata at the top of each group's attributes;
0.5 (chosen where the input is 0.5) is zarr v3 with it under ``ome``. The store is built in a
hidden folder beside the output and renamed into place when every slice is written
(``core.io.atomic``); zarr is imported only here. Probabilities are an image of their own: one
channel per class, named after it (``omero`` channel labels), values 0-1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, one_line
from .atomic import commit_folder, discard, temporary_folder_beside
from .slice_writer import ZARR_CHUNK_SIDE, SliceWriter
from .zarr_pending import start_zarr_loop, wait_for_zarr_writes

NGFF_VERSIONS = ("0.4", "0.5")
# NGFF 0.4 is zarr v2 with nested chunk folders ("/" between chunk indices)
_NGFF_CHUNK_KEYS = {"name": "v2", "separator": "/"}

# RGBA (0-255) for class 1, 2, ...; background (0) is left transparent by napari.
_PALETTE = (
    (255, 0, 0, 255),
    (0, 200, 0, 255),
    (0, 100, 255, 255),
    (255, 200, 0, 255),
    (200, 0, 255, 255),
    (0, 220, 220, 255),
    (255, 120, 0, 255),
    (150, 150, 150, 255),
)


def _axes(spatial: int, unit: str | None, channel: bool = False) -> list[dict]:
    names = "zyx"[-spatial:]
    axes = [{"name": "c", "type": "channel"}] if channel else []
    for name in names:
        axes.append({"name": name, "type": "space", **({"unit": unit} if unit else {})})
    return axes


def _versioned(version: str) -> dict:
    # 0.5 gives the version once, in the "ome" attributes (see _attributes), not per object
    return {"version": version} if version == "0.4" else {}


def _multiscales(
    name: str, axes: list[dict], scale: Sequence[float], version: str = "0.4"
) -> list[dict]:
    dataset = {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(scale)}]}
    return [{**_versioned(version), "name": name, "axes": axes, "datasets": [dataset]}]


def _attributes(version: str, **meta) -> dict:
    """A group's attributes: NGFF 0.4 at the top level, 0.5 under ``ome`` with the version."""
    return meta if version == "0.4" else {"ome": {"version": version, **meta}}


def image_label_metadata(
    class_names: Sequence[str] | Mapping[int, str] | None, version: str = "0.4"
) -> dict:
    """``image-label`` attributes: one colour and a ``class`` property per non-zero class.

    ``class_names`` is the model's list (index = label value, background first) or a mapping
    from label value to name (a napari layer's features); value 0 is background and unnamed.
    """
    meta: dict = _versioned(version)
    names = dict(enumerate(class_names)) if isinstance(class_names, Sequence) else class_names
    values = sorted(v for v in (names or {}) if v != 0)
    if values:
        meta["colors"] = [
            {"label-value": v, "rgba": list(_PALETTE[(v - 1) % len(_PALETTE)])} for v in values
        ]
        meta["properties"] = [{"label-value": v, "class": names[v]} for v in values]
    return meta


# a label image's name is a folder name under labels/
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _check_image(path: Path, image, shape: tuple[int, ...], rgb: bool) -> None:
    image_shape = tuple(int(n) for n in image.shape)
    spatial = image_shape[:-1] if rgb else image_shape
    if spatial != shape or (rgb and image_shape[-1] not in (3, 4)):
        colour = " plus colour" if rgb else ""
        raise InputError(
            f"{path}: the image's shape {image_shape} is not the labels' {shape}{colour}"
        )


def _pixel_and_unit(
    writer: SliceWriter, shape: tuple[int, ...], whose: str
) -> tuple[tuple[float, ...], str | None]:
    """The pixel size of each axis of ``shape`` (1.0 where the writer has none) and the unit,
    kept only where the size is known: 1.0 everywhere means it is not."""
    pixel = tuple(writer.scale or (1.0,) * len(shape))
    if len(pixel) != len(shape):
        raise ValueError(f"scale {pixel} does not match the {whose} shape {shape}")
    known = writer.scale is not None and set(writer.scale) != {1.0}
    return pixel, writer.unit if known else None


class _Store:
    """A store built in a hidden folder beside ``path``, renamed into place on commit."""

    def __init__(self, path: Path, version: str) -> None:
        import zarr

        start_zarr_loop()
        try:
            self.tmp: Path | None = temporary_folder_beside(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot write ({one_line(exc)})") from None
        zarr_format = 2 if version == "0.4" else 3
        self.root = zarr.open_group(store=str(self.tmp), mode="w", zarr_format=zarr_format)

    def commit(self, path: Path) -> None:
        commit_folder(self.tmp, path)
        self.tmp = None

    def discard(self) -> None:
        if self.tmp is not None:
            wait_for_zarr_writes()
            discard(self.tmp)
            self.tmp = None


def _create_array(group, shape, chunks, dtype, axes: list[dict], version: str):
    # v2 (NGFF 0.4) needs nested chunk folders asked for; v3 (0.5) nests them by default and
    # names each dimension after its axis
    if version == "0.4":
        keys = {"chunk_key_encoding": _NGFF_CHUNK_KEYS}
    else:
        keys = {"dimension_names": [axis["name"] for axis in axes]}
    return group.create_array("0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0, **keys)


class OmeZarrWriter(SliceWriter):
    """Write label slices as an OME-Zarr label image, with a copy of ``image`` when given.

    ``shape`` (the labels, (Y, X) or (Z, Y, X)) is required. ``image`` is anything indexable by
    slice with the same Y×X (a :class:`~.io.Stack`, numpy or dask), colour on its last axis
    when ``rgb``; each of its slices is copied as the matching label slice is written, so memory
    stays at one slice. ``name`` names the label image (``labels/<name>``); ``class_names`` (the
    model's, background first, or a mapping from label value to name) become its properties;
    ``unit`` (see :class:`SliceWriter`) labels the spatial axes; ``version`` is the NGFF version
    written ("0.4" or "0.5").
    """

    def __init__(
        self,
        path,
        *,
        image=None,
        rgb: bool = False,
        name: str = "labels",
        class_names: Sequence[str] | Mapping[int, str] | None = None,
        version: str = "0.4",
        **options,
    ) -> None:
        super().__init__(path, **options)
        if version not in NGFF_VERSIONS:
            raise ValueError(f"OME-Zarr {version} is not written; choose one of {NGFF_VERSIONS}")
        if self.shape is None:
            raise ValueError("an OME-Zarr output needs its shape in advance")
        if self.dtype.kind not in "ui":
            raise ValueError(f"OME-Zarr labels are integers, not {self.dtype}")
        self.image, self.rgb, self.name = image, rgb, name
        if image is not None:
            _check_image(self.path, image, self.shape, rgb)
            if not _NAME.fullmatch(name):
                raise ValueError(f"label image name {name!r}: letters, digits, . _ - only")
        self.class_names, self.version = class_names, version
        self._pixel, self.unit = _pixel_and_unit(self, self.shape, "labels'")
        self._store: _Store | None = None
        self._labels = self._image = None

    @property
    def labels_path(self) -> Path:
        """Where the label image is in the output store."""
        return self.path / "labels" / self.name if self.image is not None else self.path

    def _start(self) -> None:
        self._store = _Store(self.path, self.version)
        try:
            root = self._store.root
            spatial = len(self.shape)
            side = tuple(min(n, ZARR_CHUNK_SIDE) for n in self.shape[-2:])
            chunks = (*(1,) * (spatial - 2), *side)
            group = root
            if self.image is not None:
                group = self._start_image(root, chunks)
                labels = root.create_group("labels")
                labels.attrs.update(_attributes(self.version, labels=[self.name]))
                group = labels.create_group(self.name)
            label_meta = image_label_metadata(self.class_names, self.version)
            if self.image is not None:
                label_meta["source"] = {"image": "../../"}
            axes = _axes(spatial, self.unit)
            group.attrs.update(
                _attributes(
                    self.version,
                    multiscales=_multiscales(self.name, axes, self._pixel, self.version),
                    **{"image-label": label_meta},
                )
            )
            self._labels = _create_array(group, self.shape, chunks, self.dtype, axes, self.version)
        except BaseException:
            self._discard()
            raise

    def _start_image(self, root, chunks: tuple[int, ...]):
        channels = int(self.image.shape[-1]) if self.rgb else 0
        shape = ((channels,) if channels else ()) + self.shape
        name = Path(str(getattr(self.image, "path", "image"))).name
        scale = ((1.0,) if channels else ()) + self._pixel
        axes = _axes(len(self.shape), self.unit, channel=bool(channels))
        root.attrs.update(
            _attributes(self.version, multiscales=_multiscales(name, axes, scale, self.version))
        )
        chunks = ((1,) if channels else ()) + chunks
        dtype = np.dtype(self.image.dtype)
        self._image = _create_array(root, shape, chunks, dtype, axes, self.version)
        return root

    def _append(self, labels: np.ndarray) -> None:
        z = self.slices_written
        stack = len(self.shape) == 3
        if stack:
            self._labels[z] = labels
        else:
            self._labels[...] = labels
        if self._image is not None:
            plane = np.asarray(self.image[z] if stack else self.image)
            if self.rgb:
                plane = np.moveaxis(plane, -1, 0)  # Y X C -> C Y X
                index = (slice(None), z) if stack else (slice(None),)
            else:
                index = (z,) if stack else (Ellipsis,)
            self._image[index] = plane

    def _commit(self) -> None:
        self._store.commit(self.path)
        self._store = self._labels = self._image = None

    def _discard(self) -> None:
        self._labels = self._image = None
        if self._store is not None:
            self._store.discard()
            self._store = None


def _omero(names: Sequence[str]) -> dict:
    """Channel labels and display settings (0-1, a colour per class) for viewers."""
    channels = [
        {
            "label": name,
            "color": "{:02X}{:02X}{:02X}".format(*_PALETTE[(i - 1) % len(_PALETTE)][:3])
            if i
            else "FFFFFF",
            "active": i > 0,
            "window": {"min": 0.0, "max": 1.0, "start": 0.0, "end": 1.0},
        }
        for i, name in enumerate(names)
    ]
    return {"channels": channels, "rdefs": {"model": "color"}}


class OmeZarrChannelsWriter(SliceWriter):
    """Write ``channels`` float planes per slice (class probabilities, in class order) as an
    OME-Zarr image with a channel axis: axes (c, z, y, x), or (c, y, x) for a 2D image.

    ``shape`` is the flat (channels × slices, Y, X) the planes arrive in; ``scale`` (2 or 3
    numbers) gives the image's spatial axes, and a 3-number scale keeps a one-slice stack 3D.
    ``channel_names`` (the model's class names) label the channels.
    """

    def __init__(
        self,
        path,
        *,
        channels: int,
        channel_names: Sequence[str] | None = None,
        version: str = "0.4",
        **options,
    ) -> None:
        super().__init__(path, **options)
        if version not in NGFF_VERSIONS:
            raise ValueError(f"OME-Zarr {version} is not written; choose one of {NGFF_VERSIONS}")
        if self.shape is None or len(self.shape) != 3 or self.shape[0] % channels:
            raise ValueError(f"{channels} planes per slice do not fill the shape {self.shape}")
        if self.dtype.kind != "f":
            raise ValueError(f"probabilities are floats, not {self.dtype}")
        slices = self.shape[0] // channels
        stack = slices > 1 or (self.scale is not None and len(self.scale) == 3)
        self.channels, self.version = channels, version
        self.names = list(channel_names or [f"class {i}" for i in range(channels)])
        if len(self.names) != channels:
            raise ValueError(f"{len(self.names)} channel names for {channels} channels")
        self.spatial = ((slices,) if stack else ()) + self.shape[1:]
        self._pixel, self.unit = _pixel_and_unit(self, self.spatial, "image's")
        self._store: _Store | None = None
        self._array = None

    def _start(self) -> None:
        self._store = _Store(self.path, self.version)
        try:
            axes = _axes(len(self.spatial), self.unit, channel=True)
            meta = _multiscales("probabilities", axes, (1.0, *self._pixel), self.version)
            omero = _omero(self.names)
            if self.version == "0.4":
                omero["version"] = "0.4"
            self._store.root.attrs.update(_attributes(self.version, multiscales=meta, omero=omero))
            side = tuple(min(n, ZARR_CHUNK_SIDE) for n in self.spatial[-2:])
            chunks = (1,) * (len(self.spatial) - 1) + side  # a plane per chunk
            shape = (self.channels, *self.spatial)
            self._array = _create_array(
                self._store.root, shape, chunks, self.dtype, axes, self.version
            )
        except BaseException:
            self._discard()
            raise

    def _append(self, plane: np.ndarray) -> None:
        z, c = divmod(self.slices_written, self.channels)
        self._array[(c, z) if len(self.spatial) == 3 else (c,)] = plane

    def _commit(self) -> None:
        self._store.commit(self.path)
        self._store = self._array = None

    def _discard(self) -> None:
        self._array = None
        if self._store is not None:
            self._store.discard()
            self._store = None

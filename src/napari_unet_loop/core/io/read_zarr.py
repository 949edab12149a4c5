"""Read zarr arrays and OME-Zarr images as a lazy :class:`~.stack.Stack`, one slice at a time.

A plain array is read like an in-memory one: (Y, X), (Z, Y, X), (Y, X, 3) or (Z, Y, X, 3).
An OME-Zarr image (a group with ``multiscales`` metadata, versions 0.4 and 0.5) is read at its
full resolution, with its named axes: singleton ``t`` and ``c`` axes are dropped, three
channels become RGB, and the pixel size comes from its scale transform. An OME-Zarr image of
float channels (class probabilities) is not a stack of slices: :func:`channel_image` gives it
whole, lazily, with its channel names. zarr is imported only when a zarr path is opened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, clean_text, one_line
from .stack import Stack
from .units import unit_name

SUFFIX = ".zarr"
_MARKERS = ("zarr.json", ".zarray", ".zgroup")


def is_zarr_path(path: str | os.PathLike) -> bool:
    """A ``.zarr`` name, or a folder holding zarr metadata."""
    path = Path(path)
    if path.suffix.lower() == SUFFIX:
        return True
    return path.is_dir() and any((path / marker).is_file() for marker in _MARKERS)


def _multiscales(attrs: dict) -> list | None:
    # OME-Zarr 0.5 nests its metadata under "ome"; 0.4 has it at the top level.
    return attrs.get("ome", attrs).get("multiscales")


def _ome_image(path: Path, group) -> tuple[object, str, tuple[float, ...] | None, str | None]:
    """The full-resolution array of an OME-Zarr image, its axis names, pixel sizes and the
    unit of its x axis."""
    multiscales = _multiscales(dict(group.attrs))
    if not multiscales:
        raise InputError(f"{path}: a zarr group without OME-Zarr multiscales metadata")
    try:
        image = multiscales[0]
        level = image["datasets"][0]
        name = level["path"]
        if not isinstance(name, str) or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"dataset path {name!r} is not inside the image")
        array = group[name]
        axes = "".join(a["name"] if isinstance(a, dict) else a for a in image.get("axes", []))
        units = [a.get("unit") for a in image.get("axes", []) if isinstance(a, dict)]
        unit = next((u for a, u in zip(axes, units, strict=False) if a.lower() == "x"), None)
        scale = None
        for transform in level.get("coordinateTransformations", []):
            if transform.get("type") == "scale":
                scale = tuple(float(s) for s in transform["scale"])
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"{path}: malformed OME-Zarr multiscales metadata ({clean_text(one_line(exc))})"
        ) from None
    if not hasattr(array, "shape"):
        raise InputError(f"{path}: OME-Zarr dataset {name!r} is not an array")
    if len(axes) != array.ndim:
        axes = "tczyx"[-array.ndim :]  # OME-Zarr before 0.4 had fixed axes
    return array, axes.lower(), scale, unit_name(unit)


def _plain_axes(path: Path, shape: tuple[int, ...]) -> str:
    """Axis names of a plain array, read the way an in-memory image is."""
    if len(shape) == 2:
        return "yx"
    if len(shape) == 3:
        return "yxc" if shape[-1] in (3, 4) else "zyx"
    if len(shape) == 4 and shape[-1] in (3, 4):
        return "zyxc"
    raise InputError(f"{path}: unsupported zarr array shape {shape}; expected Y×X, Z×Y×X or RGB")


def _pixel_sizes(scale, axes: str, spatial: list[str]) -> tuple[float, ...]:
    """One size per spatial axis from a scale given per axis or per spatial axis; else 1."""
    if scale is not None and len(scale) == len(axes):
        sizes = tuple(float(scale[axes.index(a)]) for a in spatial)
    elif scale is not None and len(scale) == len(spatial):
        sizes = tuple(float(s) for s in scale)
    else:
        sizes = (1.0,) * len(spatial)
    # a nonsensical size (0, negative, NaN) is treated as unknown, as for TIFFs
    return tuple(s if np.isfinite(s) and s > 0 else 1.0 for s in sizes)


def _group_attrs(path: str | os.PathLike, sub: str | None = None) -> dict | None:
    """A zarr group's attributes (OME metadata unnested), or None where there is no group."""
    import zarr

    try:
        attrs = dict(zarr.open_group(store=str(path), mode="r", path=sub).attrs)
    except Exception:  # missing, an array, or not zarr at all
        return None
    return attrs.get("ome", attrs)


def is_label_image(path: str | os.PathLike) -> bool:
    """An OME-Zarr label image (``image-label`` metadata), which napari shows as Labels."""
    attrs = _group_attrs(path)
    return attrs is not None and "image-label" in attrs


def ngff_version(path: str | os.PathLike) -> str | None:
    """The OME-Zarr version of an image or label image ("0.4", "0.5"...), None for others."""
    import zarr

    try:
        attrs = dict(zarr.open_group(store=str(path), mode="r").attrs)
    except Exception:
        return None
    if isinstance(attrs.get("ome"), dict):
        version = attrs["ome"].get("version")
    else:
        multiscales = attrs.get("multiscales")
        first = multiscales[0] if isinstance(multiscales, list) and multiscales else {}
        version = first.get("version") if isinstance(first, dict) else None
    return version if isinstance(version, str) else None


# properties beyond this many label values are not read (a hostile file could list millions)
_MAX_PROPERTIES = 65536


def label_features(path: str | os.PathLike) -> dict[str, list]:
    """A label image's ``image-label`` properties as napari Labels features: an ``index``
    column (the label value) and one column per property key (``class`` in our files).
    Entries that are not a label value with plain values are skipped; {} when there are none.
    """
    properties = ((_group_attrs(path) or {}).get("image-label") or {}).get("properties")
    if not isinstance(properties, list):
        return {}
    rows = {}
    for entry in properties[:_MAX_PROPERTIES]:
        value = entry.get("label-value") if isinstance(entry, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            plain = (str, int, float, bool, type(None))
            rows[value] = {k: v for k, v in entry.items() if isinstance(v, plain)}
    if not rows:
        return {}
    keys = sorted({k for row in rows.values() for k in row} - {"label-value", "index"})
    values = sorted(rows)
    return {"index": values, **{k: [rows[v].get(k) for v in values] for k in keys}}


def label_images(path: str | os.PathLike) -> list[Path]:
    """The label images an OME-Zarr image lists in its ``labels`` group (none for others)."""
    names = (_group_attrs(path, "labels") or {}).get("labels", [])
    return [Path(path) / "labels" / name for name in names if isinstance(name, str)]


def open_zarr(path: str | os.PathLike) -> Stack:
    """Open a zarr array or OME-Zarr image for reading slice by slice."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as exc:
        raise InputError(f"{path}: not a readable zarr array ({one_line(exc)})") from None
    if isinstance(node, zarr.Array):
        array, axes = node, _plain_axes(path, node.shape)
        ours = dict(node.attrs).get("napari_unet_loop", {})
        scale, unit = ours.get("scale"), unit_name(ours.get("unit"))
    else:
        array, axes, scale, unit = _ome_image(path, node)
    sizes = dict(zip(axes, array.shape, strict=True))
    if set(axes) - set("tczyx") or sizes.get("t", 1) > 1 or sizes.get("c", 1) not in (1, 3, 4):
        raise InputError(
            f"{path}: unsupported axes {axes} {array.shape}; expected one time point and "
            "1 or 3 channels"
        )
    rgb = sizes.get("c", 1) in (3, 4)
    is_2d = "z" not in axes
    plane_axes = [a for a in axes if a in "yx" or (a == "c" and rgb)]
    order = [plane_axes.index(a) for a in "yxc" if a in plane_axes]  # → Y X [C]
    slice_shape = (sizes["y"], sizes["x"], *((3,) if rgb else ()))
    spatial = [a for a in axes if a in "zyx"]
    pixel = _pixel_sizes(scale, axes, spatial)

    def read_slice(z: int) -> np.ndarray:
        index = tuple(z if a == "z" else slice(None) if a in plane_axes else 0 for a in axes)
        plane = np.asarray(array[index]).transpose(order)
        return plane[..., :3] if rgb else plane

    return Stack(
        path,
        num_slices=1 if is_2d else sizes["z"],
        slice_shape=slice_shape,
        dtype=np.dtype(array.dtype),
        read_slice=read_slice,
        is_2d=is_2d,
        scale=pixel,
        storage="zarr",
        unit=unit if set(pixel) != {1.0} else None,
    )


@dataclass(frozen=True)
class ChannelImage:
    """An OME-Zarr image of float channels (class probabilities), axes c[z]yx, read lazily."""

    array: object  # the full-resolution zarr array
    names: list[str]  # one per channel
    scale: tuple[float, ...]  # of the spatial axes
    unit: str | None


def channel_image(path: str | os.PathLike) -> ChannelImage | None:
    """The channel image at ``path``; None for anything else (stacks, colour, labels)."""
    import zarr

    attrs = _group_attrs(path)
    if attrs is None or "image-label" in attrs or not _multiscales(attrs):
        return None
    try:
        array, axes, scale, unit = _ome_image(Path(path), zarr.open_group(str(path), mode="r"))
    except InputError:
        return None
    if axes not in ("cyx", "czyx") or np.dtype(array.dtype).kind != "f" or array.shape[0] < 2:
        return None
    omero = attrs.get("omero")  # display metadata: any shape a file gives it
    channels = omero.get("channels") if isinstance(omero, dict) else None
    listed = channels if isinstance(channels, list) else []
    labels = [c.get("label") for c in listed if isinstance(c, dict)]
    if len(labels) == array.shape[0] and all(isinstance(n, str) for n in labels):
        labels = [clean_text(n) for n in labels]
    else:
        labels = [f"channel {i}" for i in range(array.shape[0])]
    pixel = _pixel_sizes(scale, axes, [a for a in axes if a in "zyx"])
    return ChannelImage(array, labels, pixel, unit if set(pixel) != {1.0} else None)

"""Reading zarr arrays and OME-Zarr images slice by slice."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.io.read import read_stack
from napari_unet_loop.core.io.read_zarr import is_zarr_path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _ome(path, data, axes, scale, *, version):
    """A one-level OME-Zarr image: 0.4 on zarr format 2, 0.5 on format 3."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    group.create_array("s0", data=data, chunks=data.shape)
    image = {
        "version": version,
        "axes": [{"name": a} for a in axes],
        "datasets": [
            {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        ],
    }
    if version == "0.4":
        group.attrs["multiscales"] = [image]
    else:
        group.attrs["ome"] = {"version": version, "multiscales": [image]}


@pytest.mark.parametrize(
    ("shape", "expected_2d"), [((8, 10), True), ((3, 8, 10), False), ((2, 8, 10, 3), False)]
)
def test_plain_arrays_read_like_in_memory_ones(tmp_path, rng, shape, expected_2d):
    data = rng.integers(0, 255, shape, dtype=np.uint8)
    zarr.create_array(str(tmp_path / "a.zarr"), data=data, chunks=data.shape)
    with read_stack(tmp_path / "a.zarr") as stack:
        assert stack.storage == "zarr" and stack.shape == shape and stack.is_2d == expected_2d
        np.testing.assert_array_equal(stack.to_numpy(), data)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_drops_singleton_axes_and_reads_the_scale(tmp_path, rng, version):
    data = rng.integers(0, 4000, (1, 1, 4, 8, 10), dtype=np.uint16)
    _ome(tmp_path / "img", data, "tczyx", [1, 1, 2.0, 0.5, 0.25], version=version)
    assert is_zarr_path(tmp_path / "img")  # no .zarr suffix: found by its metadata
    with read_stack(tmp_path / "img") as stack:
        assert stack.shape == (4, 8, 10) and stack.scale == (2.0, 0.5, 0.25)
        np.testing.assert_array_equal(stack[2], data[0, 0, 2])


def test_ome_zarr_with_three_channels_is_rgb(tmp_path, rng):
    data = rng.integers(0, 255, (3, 2, 8, 10), dtype=np.uint8)
    _ome(tmp_path / "rgb.zarr", data, "czyx", [1, 1.0, 0.5, 0.5], version="0.4")
    with read_stack(tmp_path / "rgb.zarr") as stack:
        assert stack.shape == (2, 8, 10, 3) and stack.rgb
        np.testing.assert_array_equal(stack[1], np.moveaxis(data[:, 1], 0, -1))


@pytest.mark.parametrize(
    ("shape", "axes", "match"),
    [((2, 1, 4, 8, 10), "tczyx", "one time point"), ((5, 4, 8, 10), "czyx", "channels")],
)
def test_unsupported_ome_layouts(tmp_path, shape, axes, match):
    _ome(tmp_path / "x.zarr", np.zeros(shape, np.uint8), axes, [1.0] * len(shape), version="0.4")
    with pytest.raises(InputError, match=match):
        read_stack(tmp_path / "x.zarr")


def test_not_a_zarr(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(InputError, match="not a readable zarr"):
        read_stack(tmp_path / "empty.zarr")
    zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    with pytest.raises(InputError, match="multiscales"):
        read_stack(tmp_path / "group.zarr")

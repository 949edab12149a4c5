"""Segmenting files and arrays to labels on disk."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_unet_loop.core.batch import iter_segment_file, segment_file
from napari_unet_loop.core.inference import predict
from napari_unet_loop.core.io import read_image, read_stack
from napari_unet_loop.core.modelfile import new_model


@pytest.fixture
def model():
    return new_model(["background", "nucleus"], depth=2, base_channels=4, seed=1)


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 255, (3, 40, 50), dtype=np.uint8)


def test_a_dask_array_goes_to_zarr(model, image, tmp_path):
    out = segment_file(da.from_array(image, chunks=(1, 40, 50)), tmp_path / "l.zarr", model=model)
    np.testing.assert_array_equal(read_image(out / "labels/classes"), predict(image, model).labels)
    np.testing.assert_array_equal(read_image(out), image)  # the OME-Zarr image beside them


def test_probabilities_hold_one_plane_per_class_and_slice(model, image, tmp_path):
    segment_file(image, tmp_path / "l.tif", model=model, probabilities=tmp_path / "p.zarr")
    with read_stack(tmp_path / "p.zarr") as planes:
        assert planes.shape == (6, 40, 50) and planes.dtype == np.float32
        expected = predict(image, model).probabilities
        np.testing.assert_allclose(planes[3], expected[1, 1], atol=1e-6)


def test_closing_midway_leaves_no_output(model, image, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", image, photometric="minisblack")
    events = iter_segment_file(tmp_path / "in.tif", tmp_path / "l.tif", model=model,
                               batch_size=1)
    next(events)
    events.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]

"""Segmenting files and arrays to labels on disk."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_unet_loop.core.inference.batch import iter_segment_file, segment_file
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.io.read import read_image
from napari_unet_loop.core.io.read_zarr import channel_image
from napari_unet_loop.core.model.modelfile import new_model


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
    probabilities = channel_image(tmp_path / "p.zarr")
    planes = probabilities.array  # class, slice, Y, X
    assert planes.shape == (2, 3, 40, 50) and planes.dtype == np.float32
    assert probabilities.names == model.class_names
    expected = predict(image, model).probabilities
    np.testing.assert_allclose(planes[1, 1], expected[1, 1], atol=1e-6)


def test_closing_midway_leaves_no_output(model, image, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", image, photometric="minisblack")
    events = iter_segment_file(tmp_path / "in.tif", tmp_path / "l.tif", model=model, batch_size=1)
    next(events)
    events.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_instance_ids_are_unique_over_the_stack(model, tmp_path):
    from napari_unet_loop.core.inference.postprocess import StackInstances

    number = StackInstances(2)
    classes = np.zeros((3, 20, 20), np.uint8)
    classes[:, 2:6, 2:6] = classes[:, 10:15, 10:15] = 1
    planes = [number(c, None) for c in classes]
    ids = [set(np.unique(p)) - {0} for p in planes]
    assert ids == [{1, 2}, {3, 4}, {5, 6}]


def test_the_diameter_rescales_and_labels_come_back_on_the_input_grid(model, image, tmp_path):
    model.provenance["scale"] = {"object_diameter": 10.0, "image_scale": 8.0}
    out = segment_file(image, tmp_path / "l.tif", model=model, diameter=20.0, instances=True)
    labels = read_image(out)
    assert labels.shape == image.shape
    np.testing.assert_array_equal(labels > 0, predict(image, model, scale=0.5).labels > 0)


def test_segmenting_a_stack_to_instances_never_repeats_an_id(model, image, tmp_path):
    labels = read_image(segment_file(image, tmp_path / "i.tif", model=model, instances=True))
    ids = [set(np.unique(plane)) - {0} for plane in labels]
    assert sum(len(i) for i in ids) == len(set().union(*ids)) > 0

"""npe2 writers: Labels saved to TIFF, OME-TIFF or OME-Zarr keep values, shape, pixel size and,
in OME-Zarr, class names; an Image and a Labels layer together make one OME-Zarr."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet_loop._reader import read_layers
from napari_unet_loop._writer import class_names, write_image_and_labels, write_labels
from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.io.read import read_stack
from napari_unet_loop.core.io.read_zarr import label_features


def test_stack_round_trip_with_scale(tmp_path):
    labels = np.zeros((3, 20, 24), np.int32)
    labels[1, 5:9, 5:12] = 300  # needs 16 bits
    path = tmp_path / "seg.tif"
    assert write_labels(str(path), labels, {"scale": [2.0, 0.5, 0.5], "name": "seg"}) == [str(path)]
    with read_stack(path) as stack:
        assert stack.scale == pytest.approx((2.0, 0.5, 0.5))
        np.testing.assert_array_equal(stack.to_numpy(), labels)


def test_2d_and_unusable_scale(tmp_path):
    labels = np.eye(16, dtype=np.uint8)
    path = tmp_path / "seg.tiff"
    write_labels(str(path), labels, {"scale": [1.0, 1.0, 1.0]})  # wrong length: dropped
    with read_stack(path) as stack:
        assert stack.is_2d and stack.scale == (1.0, 1.0)
        np.testing.assert_array_equal(stack.to_numpy(), labels)


def test_failure_leaves_nothing_behind(tmp_path):
    old = tmp_path / "seg.tif"
    write_labels(str(old), np.ones((8, 8), np.uint8), {})
    with pytest.raises(InputError):
        write_labels(str(old), np.ones((2, 2, 8, 8), np.uint8), {})  # 4D labels
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.tif"]
    np.testing.assert_array_equal(read_stack(old).to_numpy(), np.ones((8, 8)))


def test_napari_saves_a_labels_layer_through_the_manifest(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(np.arange(64, dtype=np.uint8).reshape(8, 8), scale=(0.25, 0.25))
    path = tmp_path / "out.tif"
    written = viewer.layers.save(str(path), selected=False, plugin="napari-unet-loop")
    assert written == [str(path)]
    with read_stack(path) as stack:
        np.testing.assert_array_equal(stack.to_numpy(), layer.data)
        assert stack.scale == pytest.approx((0.25, 0.25))


@pytest.mark.parametrize("name", ["out.zarr", "out.ome.tif"])
def test_napari_saves_ome_formats_with_the_scale(make_napari_viewer, tmp_path, name):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(np.arange(64, dtype=np.uint8).reshape(8, 8), scale=(0.25, 0.5))
    path = tmp_path / name
    assert viewer.layers.save(str(path), selected=False, plugin="napari-unet-loop") == [str(path)]
    with read_stack(path) as stack:
        np.testing.assert_array_equal(stack.to_numpy(), layer.data)
        assert stack.scale == pytest.approx((0.25, 0.5))


def test_ome_zarr_keeps_the_class_names_and_napari_ome_zarr_opens_it(tmp_path):
    import pandas as pd

    labels = np.zeros((6, 8), np.uint8)
    labels[1:3, 2:6] = 2
    features = pd.DataFrame({"index": [0, 1, 2], "class": ["background", "cell", "edge"]})
    path = tmp_path / "seg.zarr"
    write_labels(str(path), labels, {"scale": [0.5, 0.25], "features": features})
    assert label_features(path) == {"index": [1, 2], "class": ["cell", "edge"]}
    [(_, meta, kind)] = read_layers(str(path))  # the plugin reads the names back as features
    assert kind == "labels" and meta["features"] == {"index": [1, 2], "class": ["cell", "edge"]}
    reader = pytest.importorskip("napari_ome_zarr._reader", reason="napari-ome-zarr not installed")
    [(data, meta, kind)] = reader.napari_get_reader(str(path))(str(path))
    assert kind == "labels" and meta["scale"] == pytest.approx((0.5, 0.25))
    assert meta["properties"]["class"] == ["cell", "edge"]
    np.testing.assert_array_equal(np.asarray(data[0]), labels)


def test_class_names_from_features():
    import pandas as pd

    assert class_names(None) == {} and class_names(pd.DataFrame({"area": [1.0]})) == {}
    assert class_names(pd.DataFrame({"class": ["bg", "cell"]})) == {0: "bg", 1: "cell"}


def test_image_and_labels_together_make_one_ome_zarr(tmp_path):
    import pandas as pd
    import zarr

    image = np.random.default_rng(5).integers(0, 255, (2, 6, 8, 3), dtype=np.uint8)
    labels = (image[..., 0] > 128).astype(np.uint8)
    features = pd.DataFrame({"index": [0, 1], "class": ["background", "cell"]})
    layers = [
        (labels, {"name": "../my seg", "scale": [2.0, 0.5, 0.5], "features": features}, "labels"),
        (image, {"name": "raw", "rgb": True}, "image"),
    ]
    path = tmp_path / "both.zarr"
    assert write_image_and_labels(str(path), layers) == [str(path)]
    [(data, meta, kind), (label_data, label_meta, label_kind)] = read_layers(str(path))
    assert (kind, label_kind) == ("image", "labels") and meta["rgb"]
    np.testing.assert_array_equal(np.asarray(data), image)
    np.testing.assert_array_equal(np.asarray(label_data), labels)
    assert label_meta["name"] == "both my_seg" and label_meta["scale"] == (2.0, 0.5, 0.5)
    assert label_meta["features"] == {"index": [1], "class": ["cell"]}
    models = pytest.importorskip("ome_zarr_models.v04", reason="ome-zarr-models not installed")
    assert models.Image.from_zarr(zarr.open_group(path, mode="r")).labels is not None
    reader = pytest.importorskip("napari_ome_zarr._reader", reason="napari-ome-zarr not installed")
    [_, (data, meta, kind)] = reader.napari_get_reader(str(path))(str(path))
    assert kind == "labels" and meta["scale"] == pytest.approx((2.0, 0.5, 0.5))
    assert meta["properties"]["class"] == ["cell"]


def test_image_and_labels_of_different_grids_are_refused(tmp_path):
    layers = [(np.zeros((6, 8), np.uint8), {}, "image"), (np.zeros((6, 9), np.uint8), {}, "labels")]
    with pytest.raises(InputError, match="shape"):
        write_image_and_labels(str(tmp_path / "x.zarr"), layers)
    assert list(tmp_path.iterdir()) == []


def test_napari_saves_an_image_with_its_labels(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    viewer.add_image(image, scale=(0.25, 0.5))
    viewer.add_labels((image > 30).astype(np.uint8), scale=(0.25, 0.5), name="seg")
    path = tmp_path / "out.zarr"
    assert viewer.layers.save(str(path), selected=False, plugin="napari-unet-loop") == [str(path)]
    with read_stack(path / "labels" / "seg") as stack:
        np.testing.assert_array_equal(stack.to_numpy(), image > 30)
        assert stack.scale == pytest.approx((0.25, 0.5))
    with read_stack(path) as stack:
        np.testing.assert_array_equal(stack.to_numpy(), image)

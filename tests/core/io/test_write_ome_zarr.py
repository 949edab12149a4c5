"""OME-Zarr labels out: NGFF 0.4 (0.5 from a 0.5 input) as other tools read it (ome-zarr-models,
napari-ome-zarr)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.inference.batch import segment_file
from napari_unet_loop.core.io.read import read_image, read_scale
from napari_unet_loop.core.io.read_zarr import label_features, ngff_version
from napari_unet_loop.core.io.write import write_labels
from napari_unet_loop.core.io.write_ome_zarr import OmeZarrWriter
from napari_unet_loop.core.model.modelfile import new_model

SCALE = (2.0, 0.5, 0.25)


@pytest.fixture
def model():
    return new_model(["background", "membrane"], depth=2, base_channels=4, seed=0)


@pytest.fixture
def segmented(model, tmp_path):
    """A Z×Y×X TIFF with its pixel size, segmented to OME-Zarr through the CLI's code path."""
    image = np.random.default_rng(0).integers(0, 255, (3, 40, 48), dtype=np.uint8)
    source = tmp_path / "cells.tif"
    tifffile.imwrite(
        source,
        image,
        imagej=True,
        resolution=(1 / SCALE[2], 1 / SCALE[1]),
        metadata={"spacing": SCALE[0], "unit": "um", "axes": "ZYX"},
    )
    reference = segment_file(source, tmp_path / "ref.tif", model=model)
    return image, read_image(reference), segment_file(source, tmp_path / "out.zarr", model=model)


def test_image_and_labels_with_axes_units_scale_and_class_names(segmented):
    image, labels, out = segmented
    root = zarr.open_group(out, mode="r")
    assert root.metadata.zarr_format == 2
    [image_meta] = root.attrs["multiscales"]
    assert [a["name"] for a in image_meta["axes"]] == ["z", "y", "x"]
    assert {a["unit"] for a in image_meta["axes"]} == {"micrometer"}
    assert root["labels"].attrs["labels"] == ["classes"]
    label_attrs = root["labels/classes"].attrs
    [label_meta] = label_attrs["multiscales"]
    [scale] = label_meta["datasets"][0]["coordinateTransformations"]
    assert scale == {"type": "scale", "scale": list(SCALE)}
    properties = label_attrs["image-label"]["properties"]
    assert properties == [{"label-value": 1, "class": "membrane"}]
    np.testing.assert_array_equal(root["0"][:], image)
    np.testing.assert_array_equal(read_image(out / "labels/classes"), labels)
    assert read_scale(out / "labels/classes") == SCALE


def test_ome_zarr_models_validates_it(segmented):
    models = pytest.importorskip("ome_zarr_models.v04", reason="ome-zarr-models not installed")
    out = segmented[2]
    image = models.Image.from_zarr(zarr.open_group(out, mode="r"))
    assert image.labels is not None
    label = models.ImageLabel.from_zarr(zarr.open_group(out / "labels/classes", mode="r"))
    assert label.attributes.image_label.properties[0].model_extra == {"class": "membrane"}


def test_napari_ome_zarr_opens_labels_with_the_scale(segmented):
    reader = pytest.importorskip("napari_ome_zarr._reader", reason="napari-ome-zarr not installed")
    _, labels, out = segmented
    layers = reader.napari_get_reader(str(out))(str(out))
    kinds = [kind for _, _, kind in layers]
    assert kinds == ["image", "labels"]
    data, meta, _ = layers[1]
    np.testing.assert_array_equal(np.asarray(data[0]), labels)
    assert meta["scale"] == pytest.approx(SCALE)
    assert meta["properties"]["class"] == ["membrane"]


def test_a_05_input_gives_a_05_output_other_tools_read(model, tmp_path):
    image = np.random.default_rng(3).integers(0, 255, (2, 24, 32), dtype=np.uint8)
    source = tmp_path / "in.zarr"
    with OmeZarrWriter(source, image=image, shape=image.shape, scale=SCALE, version="0.5") as w:
        for plane in image:
            w.write(plane // 128)
    assert ngff_version(source) == "0.5"
    out = segment_file(source, tmp_path / "out.zarr", model=model)
    root = zarr.open_group(out, mode="r")
    assert root.metadata.zarr_format == 3 and ngff_version(out) == "0.5"
    assert ngff_version(out / "labels/classes") == "0.5"
    assert root["labels/classes/0"].metadata.dimension_names == ("z", "y", "x")
    np.testing.assert_array_equal(root["0"][:], image)
    assert read_scale(out / "labels/classes") == SCALE
    assert label_features(out / "labels/classes") == {"index": [1], "class": ["membrane"]}
    models = pytest.importorskip("ome_zarr_models.v05", reason="ome-zarr-models not installed")
    assert models.Image.from_zarr(root).labels is not None
    models.ImageLabel.from_zarr(zarr.open_group(out / "labels/classes", mode="r"))
    reader = pytest.importorskip("napari_ome_zarr._reader", reason="napari-ome-zarr not installed")
    [_, (data, meta, kind)] = reader.napari_get_reader(str(out))(str(out))
    assert kind == "labels" and meta["scale"] == pytest.approx(SCALE)
    np.testing.assert_array_equal(np.asarray(data[0]), read_image(out / "labels/classes"))


def test_a_04_input_and_a_tiff_give_04(segmented, tmp_path):
    assert ngff_version(segmented[2]) == "0.4"
    with pytest.raises(ValueError, match="0.3"):
        OmeZarrWriter(tmp_path / "x.zarr", shape=(8, 10), version="0.3")


def test_label_features_skip_what_is_not_a_label_value_with_plain_values(tmp_path):
    group = zarr.open_group(str(tmp_path / "l.zarr"), mode="w", zarr_format=2)
    properties = [
        {"label-value": 2, "class": "b", "area": 4.5},
        {"label-value": 1, "class": "a"},
        {"label-value": "3", "class": "x"},
        {"label-value": True, "class": "x"},
        {"label-value": 4, "class": {"nested": 1}},
        "junk",
    ]
    group.attrs["image-label"] = {"properties": properties}
    assert label_features(tmp_path / "l.zarr") == {
        "index": [1, 2, 4],
        "area": [None, 4.5, None],
        "class": ["a", "b", None],
    }
    group.attrs["image-label"] = {"properties": "junk"}
    assert label_features(tmp_path / "l.zarr") == {}
    assert label_features(tmp_path / "missing.zarr") == {}


def test_a_labels_layer_alone_is_a_label_image_root(tmp_path):
    """Without the image (napari's writer), the store's root is the label image itself."""
    labels = np.zeros((8, 10), np.uint16)
    labels[2:5, 3:7] = 300
    path = write_labels(tmp_path / "seg.zarr", labels, scale=(0.5, 0.25))
    attrs = zarr.open_group(path, mode="r").attrs
    assert "image-label" in attrs and [a["name"] for a in attrs["multiscales"][0]["axes"]] == [
        "y",
        "x",
    ]
    np.testing.assert_array_equal(read_image(path), labels)
    assert read_scale(path) == (0.5, 0.25)
    models = pytest.importorskip("ome_zarr_models.v04", reason="ome-zarr-models not installed")
    models.ImageLabel.from_zarr(zarr.open_group(path, mode="r"))


def test_rgb_image_gets_a_channel_axis_and_2d_labels(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (8, 10, 3), dtype=np.uint8)
    labels = (rgb[..., 0] > 128).astype(np.uint8)
    with OmeZarrWriter(tmp_path / "rgb.zarr", image=rgb, rgb=True, shape=(8, 10)) as writer:
        writer.write(labels)
    root = zarr.open_group(tmp_path / "rgb.zarr", mode="r")
    axes = [a["name"] for a in root.attrs["multiscales"][0]["axes"]]
    assert axes == ["c", "y", "x"] and root["0"].shape == (3, 8, 10)
    np.testing.assert_array_equal(np.moveaxis(root["0"][:], 0, -1), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.zarr"), rgb)  # read back as RGB
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.zarr/labels/labels"), labels)


def test_failure_leaves_nothing_and_a_file_name_is_refused(tmp_path):
    with pytest.raises(KeyboardInterrupt), OmeZarrWriter(tmp_path / "a.zarr", shape=(8, 10)):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file.zarr").write_bytes(b"")
    with pytest.raises(InputError, match="is a file"):
        OmeZarrWriter(tmp_path / "file.zarr", shape=(8, 10))


@pytest.fixture
def probabilities(model, tmp_path):
    """The segmented stack's class probabilities as an OME-Zarr image, through the CLI's code
    path, and the same probabilities as a TIFF for reference."""
    image = np.random.default_rng(1).integers(0, 255, (3, 40, 48), dtype=np.uint8)
    source = tmp_path / "cells.tif"
    tifffile.imwrite(source, image, imagej=True, resolution=(4.0, 2.0), metadata={"unit": "nm"})
    segment_file(source, tmp_path / "a.tif", model=model, probabilities=tmp_path / "p.tif")
    segment_file(source, tmp_path / "b.tif", model=model, probabilities=tmp_path / "p.zarr")
    return tifffile.imread(tmp_path / "p.tif"), tmp_path / "p.zarr"


def test_probabilities_are_an_ome_zarr_image_with_a_channel_per_class(probabilities):
    flat, out = probabilities
    root = zarr.open_group(out, mode="r")
    [meta] = root.attrs["multiscales"]
    assert [(a["name"], a["type"]) for a in meta["axes"]] == [
        ("c", "channel"),
        ("z", "space"),
        ("y", "space"),
        ("x", "space"),
    ]
    assert {a.get("unit") for a in meta["axes"][1:]} == {"nanometer"}
    [scale] = meta["datasets"][0]["coordinateTransformations"]
    assert scale["scale"] == [1.0, 1.0, 0.5, 0.25]
    assert [c["label"] for c in root.attrs["omero"]["channels"]] == ["background", "membrane"]
    data = root["0"][:]
    assert data.shape == (2, 3, 40, 48) and data.dtype == np.float32
    # the TIFF holds the same planes, slice by slice, class by class
    np.testing.assert_allclose(data.transpose(1, 0, 2, 3), flat)
    models = pytest.importorskip("ome_zarr_models.v04", reason="ome-zarr-models not installed")
    models.Image.from_zarr(root)


def test_a_2d_image_gives_channels_of_one_plane(model, tmp_path):
    from napari_unet_loop.core.io.write_ome_zarr import OmeZarrChannelsWriter

    with OmeZarrChannelsWriter(
        tmp_path / "p.zarr", channels=2, shape=(2, 8, 10), scale=(0.5, 0.5), dtype=np.float32
    ) as writer:
        writer.write(np.full((8, 10), 0.25, np.float32))
        writer.write(np.full((8, 10), 0.75, np.float32))
    root = zarr.open_group(tmp_path / "p.zarr", mode="r")
    assert root["0"].shape == (2, 8, 10)
    np.testing.assert_array_equal(root["0"][:, 0, 0], [0.25, 0.75])
    assert [c["label"] for c in root.attrs["omero"]["channels"]] == ["class 0", "class 1"]
    with pytest.raises(ValueError, match="do not fill"):
        OmeZarrChannelsWriter(tmp_path / "q.zarr", channels=2, shape=(3, 8, 10), dtype=np.float32)


def test_napari_ome_zarr_opens_the_probabilities(probabilities):
    reader = pytest.importorskip("napari_ome_zarr._reader", reason="napari-ome-zarr not installed")
    _, out = probabilities
    [(data, meta, kind)] = reader.napari_get_reader(str(out))(str(out))
    assert kind == "image" and meta["channel_axis"] == 0
    assert meta["name"] == ["probabilities: background", "probabilities: membrane"]
    assert np.asarray(data[0]).shape == (2, 3, 40, 48)


@pytest.mark.parametrize(
    "omero", [["not", "a", "dict"], {"channels": "none"}, {"channels": [1, 2]}]
)
def test_malformed_channel_labels_fall_back_to_numbers(tmp_path, omero):
    from napari_unet_loop.core.io.read_zarr import channel_image
    from napari_unet_loop.core.io.write_ome_zarr import OmeZarrChannelsWriter

    path = tmp_path / "p.zarr"
    with OmeZarrChannelsWriter(path, channels=2, shape=(2, 8, 10), dtype=np.float32) as writer:
        writer.write(np.zeros((8, 10), np.float32))
        writer.write(np.ones((8, 10), np.float32))
    zarr.open_group(path, mode="r+").attrs["omero"] = omero
    assert channel_image(path).names == ["channel 0", "channel 1"]

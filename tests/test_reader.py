"""npe2 reader: TIFF stacks open as lazy Image layers with their pixel size; others are declined."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
import zarr

from napari_unet_loop._reader import get_reader
from napari_unet_loop.core.io.stack import Stack
from napari_unet_loop.core.io.write import write_labels
from napari_unet_loop.core.io.write_ome_zarr import OmeZarrWriter


def _layers(path):
    reader = get_reader(str(path))
    assert callable(reader)
    return reader(str(path))


def test_stack_is_lazy_with_scale_from_imagej_metadata(tmp_path):
    stack = np.random.default_rng(0).integers(0, 255, (5, 32, 40), dtype=np.uint8)
    path = tmp_path / "em.tif"
    tifffile.imwrite(
        path,
        stack,
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.5),
        metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"},
        compression="zlib",
    )
    [(data, meta, kind)] = _layers(path)
    assert kind == "image" and meta["name"] == "em" and not meta["rgb"]
    assert meta["scale"] == pytest.approx((2.0, 0.5, 0.5))
    assert isinstance(data, Stack) and data.storage == "pages"  # read slice by slice
    np.testing.assert_array_equal(np.asarray(data[3]), stack[3])
    np.testing.assert_array_equal(data[..., 2:9], stack[..., 2:9])  # napari's indexing
    np.testing.assert_array_equal(data[1, ...], stack[1])
    assert data.size == stack.size
    np.testing.assert_array_equal(np.asarray(data), stack)


# Walkthrough defect 10: the first file opened froze napari while dask.array imported xarray
# and pandas. Checked in a fresh process, where nothing else has imported them.
COLD_READ = """
import sys
import numpy as np, tifffile
tifffile.imwrite({path!r}, np.zeros((4, 32, 32), np.uint16), photometric="minisblack")
from napari_unet_loop._reader import get_reader
[(data, _, _)] = get_reader({path!r})({path!r})
print(type(data).__name__, [m for m in ("dask.array", "pandas", "torch") if m in sys.modules])
"""


def test_opening_a_stack_reads_lazily_without_importing_dask(tmp_path):
    script = COLD_READ.format(path=str(tmp_path / "em.tif"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Stack", "[]"]


def test_2d_and_rgb(tmp_path):
    gray = np.arange(24 * 30, dtype=np.uint16).reshape(24, 30)
    rgb = np.random.default_rng(1).integers(0, 255, (24, 30, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "gray.tif", gray)
    tifffile.imwrite(tmp_path / "cells.tiff", rgb, photometric="rgb")
    [(data, meta, _)] = _layers(tmp_path / "gray.tif")
    np.testing.assert_array_equal(data, gray)
    assert meta["scale"] == (1.0, 1.0) and not meta["rgb"]
    [(data, meta, _)] = _layers(tmp_path / "cells.tiff")
    assert meta["rgb"] and np.asarray(data).shape == (24, 30, 3)


@pytest.mark.parametrize("slices", [3, 4])
@pytest.mark.filterwarnings("ignore:<tifffile.TiffWriter.write> data with shape")
def test_three_or_four_grey_slices_with_tifffile_defaults_open_as_a_stack(tmp_path, slices):
    """Walkthrough defect 8: a 4-slice stack opened as one RGB image, a plane dropped."""
    stack = np.random.default_rng(2).integers(0, 255, (slices, 24, 30), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "em.tif", stack)
    [(data, meta, kind)] = _layers(tmp_path / "em.tif")
    assert kind == "image" and not meta["rgb"] and len(meta["scale"]) == 3
    np.testing.assert_array_equal(np.asarray(data), stack)


def test_several_files_at_once(tmp_path):
    paths = []
    for name in ("a", "b"):
        paths.append(str(tmp_path / f"{name}.tif"))
        tifffile.imwrite(paths[-1], np.zeros((16, 16), np.uint8))
    layers = get_reader(paths)(paths)
    assert [meta["name"] for _, meta, _ in layers] == ["a", "b"]


def test_declines_what_it_cannot_read(tmp_path):
    (tmp_path / "notes.tif").write_text("not a tiff")
    movie = np.zeros((2, 3, 8, 8), np.uint8)  # T×Z×Y×X
    tifffile.imwrite(tmp_path / "movie.tif", movie, photometric="minisblack")
    tifffile.imwrite(tmp_path / "image.png.tif", np.zeros((8, 8), np.uint8))
    assert get_reader(str(tmp_path / "notes.tif")) is None
    assert get_reader(str(tmp_path / "movie.tif")) is None
    assert get_reader(str(tmp_path / "missing.tif")) is None
    assert get_reader(str(tmp_path / "image.png")) is None
    assert get_reader([str(tmp_path / "image.png.tif"), str(tmp_path / "notes.tif")]) is None


def test_napari_opens_through_the_manifest(make_napari_viewer, tmp_path):
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, np.ones((3, 16, 16), np.uint8), photometric="minisblack")
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="napari-unet-loop")
    assert layer.name == "cells" and layer.data.shape == (3, 16, 16)
    viewer.dims.set_current_step(0, 2)
    viewer.dims.ndisplay = 3  # napari reads the whole stack for a 3D view
    assert layer.get_value((2, 5, 5)) == 1


def test_ome_zarr_opens_lazily_as_image_and_labels_with_scale(tmp_path):
    image = np.random.default_rng(2).integers(0, 255, (4, 16, 20), dtype=np.uint8)
    labels = (image > 128).astype(np.uint8)
    path = tmp_path / "cells.zarr"
    with OmeZarrWriter(
        path,
        image=image,
        shape=labels.shape,
        scale=(2.0, 0.5, 0.5),
        unit="nm",
        name="classes",
        class_names=["background", "cell"],
    ) as writer:
        for plane in labels:
            writer.write(plane)
    [(data, meta, kind), (label_data, label_meta, label_kind)] = _layers(path)
    assert meta["units"] == label_meta["units"] == ("nanometer",) * 3
    assert (kind, label_kind) == ("image", "labels")
    assert meta["name"] == "cells" and label_meta["name"] == "cells classes"
    assert meta["scale"] == label_meta["scale"] == pytest.approx((2.0, 0.5, 0.5))
    assert label_meta["features"] == {"index": [1], "class": ["cell"]}
    assert isinstance(data, Stack) and data.storage == "zarr"
    np.testing.assert_array_equal(np.asarray(data), image)
    np.testing.assert_array_equal(np.asarray(label_data), labels)
    [(alone, alone_meta, alone_kind)] = _layers(path / "labels" / "classes")
    assert alone_kind == "labels" and alone_meta["scale"] == pytest.approx((2.0, 0.5, 0.5))


def test_plain_zarr_array_and_labels_alone(tmp_path):
    zarr.create_array(str(tmp_path / "raw.zarr"), data=np.ones((3, 8, 8), np.uint16))
    [(data, meta, kind)] = _layers(tmp_path / "raw.zarr")
    assert kind == "image" and meta["name"] == "raw" and data.shape == (3, 8, 8)
    write_labels(tmp_path / "seg.zarr", np.eye(8, dtype=np.uint8), scale=(0.5, 0.5))
    [(_, meta, kind)] = _layers(tmp_path / "seg.zarr")
    assert kind == "labels" and meta["scale"] == (0.5, 0.5)


def test_declines_folders_and_zarrs_it_cannot_read(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "empty.zarr").mkdir()
    zarr.create_array(str(tmp_path / "movie.zarr"), data=np.zeros((2, 3, 4, 8, 8), np.uint8))
    for name in ("plain", "empty.zarr", "movie.zarr", "missing.zarr"):
        assert get_reader(str(tmp_path / name)) is None, name


def test_label_files_open_as_labels(tmp_path):
    rng = np.random.default_rng(3)
    truth = np.where(rng.random((3, 16, 16)) > 0.5, 255, 0).astype(np.uint8)
    tifffile.imwrite(tmp_path / "train-volume-gt.tif", truth, photometric="minisblack")
    instances = rng.integers(0, 200, (16, 16), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "nuclei_mask.tif", instances)
    [(data, meta, kind)] = _layers(tmp_path / "train-volume-gt.tif")
    assert kind == "labels" and "rgb" not in meta and isinstance(data, np.ndarray)
    np.testing.assert_array_equal(data, truth)
    [(data, _, kind)] = _layers(tmp_path / "nuclei_mask.tif")  # many values, but named so
    assert kind == "labels" and data.shape == (16, 16)


def test_an_ome_tiff_is_named_without_its_ome_suffix(tmp_path):
    tifffile.imwrite(tmp_path / "cells.ome.tif", np.zeros((2, 8, 8), np.uint8), ome=True)
    [(_, meta, _)] = _layers(tmp_path / "cells.ome.tif")
    assert meta["name"] == "cells"


def test_probabilities_open_as_one_image_layer_per_class(make_napari_viewer, tmp_path):
    from napari_unet_loop.core.io.write_ome_zarr import OmeZarrChannelsWriter

    path = tmp_path / "cells-p.zarr"
    planes = np.random.default_rng(4).random((2, 3, 16, 20), dtype=np.float32)
    with OmeZarrChannelsWriter(
        path,
        channels=2,
        channel_names=["background", "cell"],
        shape=(6, 16, 20),
        scale=(2.0, 0.5, 0.5),
        unit="nm",
        dtype=np.float32,
    ) as writer:
        for z in range(3):
            for c in range(2):
                writer.write(planes[c, z])
    [(data, meta, kind)] = _layers(path)
    assert kind == "image" and meta["channel_axis"] == 0
    assert meta["name"] == ["cells-p background", "cells-p cell"]
    assert meta["scale"] == pytest.approx((2.0, 0.5, 0.5))
    np.testing.assert_array_equal(np.asarray(data), planes)
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-unet-loop")
    assert [layer.name for layer in layers] == ["cells-p background", "cells-p cell"]
    assert layers[1].data.shape == (3, 16, 20)
    assert tuple(layers[1].scale) == pytest.approx((2.0, 0.5, 0.5))
    assert str(layers[1].units[0]) == "nanometer"

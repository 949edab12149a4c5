"""Writing labels atomically, slice by slice, as TIFF (BigTIFF when large) or zarr."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.io import write as writing
from napari_unet_loop.core.io.read import read_image, read_scale, read_stack
from napari_unet_loop.core.io.write import (
    LabelWriter,
    OmeTiffWriter,
    ZarrWriter,
    open_label_writer,
    write_labels,
)
from napari_unet_loop.core.io.write_ome_zarr import OmeZarrChannelsWriter, OmeZarrWriter


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _assert_one_line_naming(error: pytest.ExceptionInfo, path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message and str(path) in message


@pytest.mark.parametrize(
    ("shape", "scale"), [((8, 10), (0.5, 0.25)), ((3, 8, 10), (2.0, 0.3, 0.3))]
)
def test_write_labels_round_trip_keeps_scale(tmp_path, rng, shape, scale):
    labels = rng.integers(0, 3, shape, dtype=np.uint8)
    path = write_labels(tmp_path / "labels.tif", labels, scale=scale)
    assert _files(tmp_path) == ["labels.tif"]
    with read_stack(path) as stack:
        assert stack.shape == shape and stack.dtype == np.uint8
        assert stack.scale == scale
        np.testing.assert_array_equal(stack.to_numpy(), labels)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert tif.imagej_metadata["max"] == labels.max()


def test_write_labels_without_scale(tmp_path):
    path = write_labels(tmp_path / "labels.tiff", np.ones((2, 8, 10), bool))
    assert read_scale(path) == (1.0, 1.0, 1.0)
    assert read_image(path).dtype == np.uint8


@pytest.mark.parametrize(
    ("high", "low", "dtype"),
    [(255, 0, np.uint8), (256, 0, np.uint16), (70_000, 0, np.uint32), (5, -1, np.int16)],
)
def test_write_labels_picks_a_dtype_that_holds_every_label(tmp_path, high, low, dtype):
    labels = np.zeros((2, 8, 10), np.int64)
    labels[1, 3, 4], labels[0, 0, 0] = high, low
    path = write_labels(tmp_path / "labels.tif", labels)
    read = read_image(path)
    assert read.dtype == dtype
    np.testing.assert_array_equal(read, labels)


def test_write_labels_refuses_non_labels(tmp_path):
    with pytest.raises(InputError, match="integers"):
        write_labels(tmp_path / "a.tif", np.zeros((8, 10), np.float32))
    with pytest.raises(InputError, match="2D or 3D"):
        write_labels(tmp_path / "a.tif", np.zeros((2, 2, 8, 10), np.uint8))
    assert _files(tmp_path) == []


def test_label_writer_streams_into_a_hidden_temporary_file(tmp_path, rng):
    labels = rng.integers(0, 4, (3, 8, 10), dtype=np.uint8)
    final = tmp_path / "labels.tif"
    with LabelWriter(final, scale=(1.5, 0.5, 0.5)) as writer:
        for labels_slice in labels:
            writer.write(labels_slice)
        (tmp,) = _files(tmp_path)
        assert tmp.startswith(".labels.tif") and tmp.endswith(".tmp")
        assert writer.slices_written == 3
    assert _files(tmp_path) == ["labels.tif"]
    with read_stack(final) as stack:
        assert stack.scale == (1.5, 0.5, 0.5)
        np.testing.assert_array_equal(stack.to_numpy(), labels)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_label_writer_leaves_nothing_on_error(tmp_path, error):
    with pytest.raises(error), LabelWriter(tmp_path / "labels.tif") as writer:
        writer.write(np.ones((8, 10), np.uint8))
        raise error("stopped")
    assert _files(tmp_path) == []


def test_label_writer_keeps_an_existing_file_on_error(tmp_path):
    final = tmp_path / "labels.tif"
    final.write_bytes(b"previous result")
    with pytest.raises(RuntimeError), LabelWriter(final) as writer:
        writer.write(np.ones((8, 10), np.uint8))
        raise RuntimeError("stopped")
    assert final.read_bytes() == b"previous result"
    assert _files(tmp_path) == ["labels.tif"]


def test_label_writer_replaces_an_existing_file_on_success(tmp_path):
    final = tmp_path / "labels.tif"
    final.write_bytes(b"previous result")
    with LabelWriter(final) as writer:
        writer.write(np.full((8, 10), 2, np.uint8))
    np.testing.assert_array_equal(read_image(final), np.full((8, 10), 2))
    assert _files(tmp_path) == ["labels.tif"]


def test_label_writer_abort(tmp_path):
    with LabelWriter(tmp_path / "labels.tif") as writer:
        writer.write(np.ones((8, 10), np.uint8))
        writer.abort()
    assert _files(tmp_path) == []


def test_label_writer_checks_slices(tmp_path):
    final = tmp_path / "labels.tif"
    with pytest.raises(InputError, match="shape"), LabelWriter(final) as writer:
        writer.write(np.ones((8, 10), np.uint8))
        writer.write(np.ones((8, 11), np.uint8))
    with pytest.raises(InputError, match="do not fit uint8"), LabelWriter(final) as writer:
        writer.write(np.full((8, 10), 300, np.uint16))
    with pytest.raises(InputError, match="2D"), LabelWriter(final) as writer:
        writer.write(np.ones((2, 8, 10), np.uint8))
    assert _files(tmp_path) == []


def test_label_writer_with_nothing_written_makes_no_file(tmp_path):
    with pytest.raises(ValueError, match="no label slices"), LabelWriter(tmp_path / "a.tif"):
        pass
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("missing/labels.tif", "does not exist"),
        ("folder", "is a folder"),
        ("a.png", "TIFF or zarr"),
    ],
)
def test_unwritable_output_fails_on_open(tmp_path, name, match):
    (tmp_path / "folder.tif").mkdir()
    path = tmp_path / (name + ".tif" if name == "folder" else name)
    with pytest.raises(InputError, match=match) as error:
        LabelWriter(path)
    _assert_one_line_naming(error, path)
    with pytest.raises(InputError, match=match):
        write_labels(path, np.zeros((8, 10), np.uint8))


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="needs a non-root POSIX user"
)
def test_output_in_read_only_folder_fails_on_open(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="permission denied"):
            LabelWriter(folder / "labels.tif")
    finally:
        folder.chmod(0o700)


def test_label_writer_checks_the_announced_shape(tmp_path):
    final = tmp_path / "labels.tif"
    with (
        pytest.raises(InputError, match="2 of 3 slices"),
        LabelWriter(final, shape=(3, 8, 10)) as writer,
    ):
        writer.write(np.ones((8, 10), np.uint8))
        writer.write(np.ones((8, 10), np.uint8))
    with (
        pytest.raises(InputError, match="expected"),
        LabelWriter(final, shape=(3, 8, 10)) as writer,
    ):
        writer.write(np.ones((8, 11), np.uint8))
    assert _files(tmp_path) == []


def test_large_outputs_are_written_as_bigtiff(tmp_path, monkeypatch):
    monkeypatch.setattr(writing, "BIGTIFF_ABOVE", 2 * 8 * 10)
    small, large = tmp_path / "small.tif", tmp_path / "large.tif"
    for path, depth in ((small, 2), (large, 3)):
        with LabelWriter(path, shape=(depth, 8, 10), scale=(2.0, 0.5, 0.5)) as writer:
            for z in range(depth):
                writer.write(np.full((8, 10), z, np.uint8))
    with tifffile.TiffFile(small) as tif:
        assert not tif.is_bigtiff
    with tifffile.TiffFile(large) as tif:
        assert tif.is_bigtiff
    with read_stack(large) as stack:
        assert stack.shape == (3, 8, 10) and stack[2].max() == 2


@pytest.mark.parametrize("shape", [(8, 10), (3, 8, 10)])
def test_zarr_writer_round_trip_keeps_scale(tmp_path, rng, shape):
    labels = rng.integers(0, 3, shape, dtype=np.uint8)
    scale = (0.5, 0.25) if len(shape) == 2 else (2.0, 0.5, 0.25)
    path = write_labels(tmp_path / "labels.zarr", labels, scale=scale)
    assert _files(tmp_path) == ["labels.zarr"] and path.is_dir()
    with read_stack(path) as stack:
        assert stack.storage == "zarr" and stack.shape == shape and stack.scale == scale
        np.testing.assert_array_equal(stack.to_numpy(), labels)


def test_zarr_writer_leaves_nothing_on_error_and_keeps_the_old_output(tmp_path):
    final = tmp_path / "labels.zarr"
    write_labels(final, np.ones((2, 8, 10), np.uint8))
    with pytest.raises(KeyboardInterrupt), ZarrWriter(final, shape=(2, 8, 10)) as writer:
        writer.write(np.full((8, 10), 2, np.uint8))
        raise KeyboardInterrupt
    assert _files(tmp_path) == ["labels.zarr"]
    np.testing.assert_array_equal(read_image(final), np.ones((2, 8, 10)))
    with ZarrWriter(final, shape=(2, 8, 10)) as writer:
        for _ in range(2):
            writer.write(np.full((8, 10), 2, np.uint8))
    assert _files(tmp_path) == ["labels.zarr"]
    np.testing.assert_array_equal(read_image(final), np.full((2, 8, 10), 2))


def test_open_label_writer_picks_the_format_from_the_name(tmp_path):
    assert type(open_label_writer(tmp_path / "a.tif")) is LabelWriter
    assert type(open_label_writer(tmp_path / "a.OME.tif")) is OmeTiffWriter
    assert type(open_label_writer(tmp_path / "a.zarr", shape=(8, 10))) is OmeZarrWriter
    floats = open_label_writer(tmp_path / "p.zarr", shape=(8, 10), dtype=np.float32)
    assert type(floats) is ZarrWriter
    probabilities = open_label_writer(
        tmp_path / "p.zarr", shape=(4, 8, 10), dtype=np.float32, channels=2
    )
    assert type(probabilities) is OmeZarrChannelsWriter
    with pytest.raises(ValueError, match="shape in advance"):
        ZarrWriter(tmp_path / "a.zarr")
    (tmp_path / "file.zarr").write_bytes(b"")
    with pytest.raises(InputError, match="is a file"):
        ZarrWriter(tmp_path / "file.zarr", shape=(8, 10))


def test_ome_tiff_carries_axes_and_physical_pixel_sizes(tmp_path, rng):
    labels = rng.integers(0, 300, (3, 8, 10)).astype(np.uint16)
    path = write_labels(tmp_path / "seg.ome.tif", labels, scale=(2.0, 0.5, 0.25))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and tif.series[0].axes == "ZYX"
        pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        np.testing.assert_array_equal(tif.asarray(), labels)
    sizes = [pixels[f"PhysicalSize{a}"] for a in "ZYX"]
    assert sizes == [2.0, 0.5, 0.25] and pixels["PhysicalSizeXUnit"] == "µm"
    assert read_scale(path) == (2.0, 0.5, 0.25)  # our reader takes it back too
    assert _files(tmp_path) == ["seg.ome.tif"]


@pytest.mark.parametrize("suffix, axes", [(".tif", "ZCYX"), (".ome.tif", "ZCYX")])
def test_probabilities_have_a_channel_axis(tmp_path, suffix, axes):
    path = tmp_path / f"prob{suffix}"
    with open_label_writer(
        path, dtype=np.float32, shape=(6, 8, 10), channels=2, scale=(2.0, 0.5, 0.5)
    ) as writer:
        for plane in range(6):  # slice 0 class 0, slice 0 class 1, slice 1 class 0...
            writer.write(np.full((8, 10), plane, np.float32))
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == axes
        data = tif.asarray()
    assert data.shape == (3, 2, 8, 10) and data[1, 0, 0, 0] == 2 and data[2, 1, 0, 0] == 5

"""Reading stacks lazily, and writing labels atomically with their pixel size."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.io.read import (
    Stack,
    is_tiff_path,
    list_images,
    read_image,
    read_scale,
    read_stack,
)

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _write_imagej(path, data, *, spacing=2.0, yx=(0.5, 0.25), rgb=False, compression=None):
    axes = ("ZYX" if data.ndim == 3 + rgb else "YX") + ("S" if rgb else "")
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        photometric="rgb" if rgb else "minisblack",
        resolution=(1 / yx[1], 1 / yx[0]),
        compression=compression,
        metadata={"spacing": spacing, "unit": "um", "axes": axes},
    )


# --- reading -----------------------------------------------------------------------------------


def test_is_tiff_path():
    assert is_tiff_path("a.tif") and is_tiff_path("b.TIFF") and is_tiff_path("c.ome.tif")
    assert not is_tiff_path("a.png") and not is_tiff_path("tif")


@pytest.mark.parametrize(
    ("shape", "rgb", "scale"),
    [
        ((16, 20), False, (0.5, 0.25)),
        ((3, 16, 20), False, (2.0, 0.5, 0.25)),
        ((16, 20, 3), True, (0.5, 0.25)),
        ((3, 16, 20, 3), True, (2.0, 0.5, 0.25)),
    ],
)
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_imagej_round_trip(tmp_path, rng, shape, rgb, scale, compression):
    data = rng.integers(0, 255, shape, dtype=np.uint8)
    path = tmp_path / "image.tif"
    _write_imagej(path, data, rgb=rgb, compression=compression)
    with read_stack(path) as stack:
        assert stack.shape == shape and stack.ndim == len(shape)
        assert stack.dtype == np.uint8 and stack.rgb is rgb
        assert stack.is_2d is (len(shape) == 2 + rgb)
        assert stack.scale == pytest.approx(scale)
        assert stack.storage == ("raw" if compression is None else "pages")
        np.testing.assert_array_equal(stack.to_numpy(), data)
        expected_slices = data[np.newaxis] if stack.is_2d else data
        assert len(stack) == len(expected_slices)
        for got, want in zip(stack, expected_slices, strict=True):
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(read_image(path), data)
    assert read_scale(path) == pytest.approx(scale)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_ome_tiff_physical_sizes_become_scale(tmp_path, rng, compression):
    data = rng.integers(0, 4000, (4, 16, 20), dtype=np.uint16)
    path = tmp_path / "image.ome.tif"
    tifffile.imwrite(
        path,
        data,
        ome=True,
        compression=compression,
        metadata={"axes": "ZYX", "PhysicalSizeZ": 3.0, "PhysicalSizeY": 0.3, "PhysicalSizeX": 0.3},
    )
    with read_stack(path) as stack:
        assert stack.scale == (3.0, 0.3, 0.3)
        assert stack.shape == (4, 16, 20) and stack.dtype == np.uint16
        np.testing.assert_array_equal(stack[2], data[2])


def test_plain_tiff_has_unit_scale_and_planar_rgb_is_channels_last(tmp_path, rng):
    rgb = rng.integers(0, 255, (3, 16, 20), dtype=np.uint8)
    path = tmp_path / "planar.tif"
    # as other software writes it: without tifffile's description of the array's shape
    tifffile.imwrite(path, rgb, photometric="rgb", planarconfig="separate", metadata=None)
    with read_stack(path) as stack:
        assert stack.shape == (16, 20, 3) and stack.rgb and stack.is_2d
        assert stack.scale == (1.0, 1.0)
        np.testing.assert_array_equal(stack[0], np.moveaxis(rgb, 0, -1))


@pytest.mark.parametrize("slices", [3, 4])
@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.filterwarnings("ignore:<tifffile.TiffWriter.write> data with shape")
def test_three_or_four_slices_written_with_tifffile_defaults_are_a_stack(
    tmp_path, rng, slices, compression
):
    """tifffile stores a (3|4, Y, X) array as planar RGB(A); napari opens it as slices."""
    data = rng.integers(0, 60_000, (slices, 16, 20), dtype=np.uint16)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, compression=compression)
    assert tifffile.TiffFile(path).series[0].axes == "SYX"  # what the defaults wrote
    with read_stack(path) as stack:
        assert stack.shape == (slices, 16, 20) and not stack.rgb and not stack.is_2d
        np.testing.assert_array_equal(stack.to_numpy(), data)
        np.testing.assert_array_equal(stack[slices - 1], data[-1])


def test_pages_of_a_plain_tiff_are_slices(tmp_path, rng):
    data = rng.integers(0, 255, (5, 8, 10), dtype=np.uint8)
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as writer:
        for page in data:
            writer.write(page, photometric="minisblack", compression="zlib", metadata=None)
    with read_stack(path) as stack:
        assert stack.shape == (5, 8, 10) and stack.scale == (1.0, 1.0, 1.0)
        np.testing.assert_array_equal(stack[-1], data[-1])


def test_big_endian_tiff_reads_native_values(tmp_path, rng):
    data = rng.integers(0, 60000, (2, 8, 10), dtype=np.uint16)
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, data, byteorder=">", photometric="minisblack")
    with read_stack(path) as stack:
        assert stack.storage == "raw" and stack.dtype == np.dtype("=u2")
        assert stack[1].dtype.isnative
        np.testing.assert_array_equal(stack[1], data[1])


def test_indexing_by_slice(tmp_path, rng):
    data = rng.integers(0, 255, (4, 8, 10), dtype=np.uint8)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    with read_stack(path) as stack:
        np.testing.assert_array_equal(stack[-1], data[-1])
        np.testing.assert_array_equal(stack[1:3], data[1:3])
        np.testing.assert_array_equal(stack[1, 2:5, ::2], data[1, 2:5, ::2])
        np.testing.assert_array_equal(stack[::2, 0], data[::2, 0])
        np.testing.assert_array_equal(np.asarray(stack), data)
        assert stack[5:].shape == (0, 8, 10)
        with pytest.raises(IndexError):
            stack[4]
        with pytest.raises(TypeError):
            stack["a"]
    with pytest.raises(ValueError, match="closed"):
        stack[0]


def test_single_image_is_a_stack_of_one(tmp_path, rng):
    image = rng.integers(0, 255, (8, 10), dtype=np.uint8)
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, image)
    with read_stack(path) as stack:
        assert stack.shape == (8, 10) and stack.is_2d and len(stack) == 1
        assert stack.slice_shape == (8, 10)
        np.testing.assert_array_equal(stack[0], image)
        assert stack[:].shape == (1, 8, 10)
        assert [s.shape for s in stack] == [(8, 10)]


def test_png_images(tmp_path, rng):
    rgba = rng.integers(0, 255, (8, 10, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "rgba.png", rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgba[..., :3])
    gray16 = rng.integers(0, 60000, (8, 10), dtype=np.uint16)
    iio.imwrite(tmp_path / "gray16.png", gray16)
    with read_stack(tmp_path / "gray16.png") as stack:
        assert stack.shape == (8, 10) and stack.dtype == np.uint16 and stack.is_2d
        assert stack.scale == (1.0, 1.0)
        np.testing.assert_array_equal(stack[0], gray16)


def test_palette_png_keeps_indices(tmp_path):
    from PIL import Image

    indices = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    image = Image.fromarray(indices, mode="L").convert("P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    image.save(tmp_path / "mask.png")
    np.testing.assert_array_equal(read_image(tmp_path / "mask.png"), indices)


# --- laziness ----------------------------------------------------------------------------------


def test_one_slice_of_a_compressed_stack_decodes_one_page(tmp_path, rng, monkeypatch):
    data = rng.integers(0, 255, (6, 16, 20), dtype=np.uint8)
    path = tmp_path / "compressed.tif"
    tifffile.imwrite(path, data, compression="zlib", photometric="minisblack")
    decoded = []
    original = tifffile.TiffPage.asarray

    def spy(page, *args, **kwargs):
        decoded.append(page.index)
        return original(page, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffPage, "asarray", spy)
    with read_stack(path) as stack:
        assert stack.storage == "pages" and decoded == []
        np.testing.assert_array_equal(stack[4], data[4])
    assert decoded == [4]


def test_uncompressed_stack_is_read_slice_by_slice(tmp_path, rng):
    data = rng.integers(0, 255, (6, 16, 20), dtype=np.uint8)
    path = tmp_path / "raw.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    with read_stack(path) as stack:
        assert stack.storage == "raw"
        piece = stack[3]
        # A slice is an independent, writable copy, not a view into the file.
        assert type(piece) is np.ndarray and piece.flags.writeable
        piece[:] = 0
        np.testing.assert_array_equal(stack[3], data[3])


def test_uncompressed_stack_cut_short_fails_on_the_missing_slice(tmp_path, rng):
    # As when a file is still being copied in: the header promises more than is there.
    data = rng.integers(0, 255, (4, 16, 20), dtype=np.uint8)
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        end_of_slice_2 = tif.series[0].dataoffset + 3 * data[0].nbytes
    with read_stack(path) as stack:
        with open(path, "r+b") as f:
            f.truncate(end_of_slice_2)
        np.testing.assert_array_equal(stack[2], data[2])
        with pytest.raises(InputError, match="file ends inside slice 3"):
            stack[3]


@pytest.mark.realdata
def test_isbi_volume_is_read_lazily():
    path = DATA / "isbi2012" / "train-volume.tif"
    if not path.is_file():
        pytest.skip(f"real data not found: {path.name} (expected beside the checkout)")
    with read_stack(path) as stack:
        assert stack.shape == (30, 512, 512) and stack.dtype == np.uint8
        assert stack.storage in ("raw", "pages") and not stack.is_2d
        assert stack[29].shape == (512, 512) and stack[29].std() > 0


# --- folders -----------------------------------------------------------------------------------


def test_folder_in_natural_order(tmp_path, rng):
    slices = {n: rng.integers(0, 255, (8, 10), dtype=np.uint8) for n in (1, 2, 10)}
    for n, image in slices.items():
        tifffile.imwrite(tmp_path / f"slice{n}.tif", image, imagej=True, resolution=(4.0, 2.0))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.tif").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["slice1.tif", "slice2.tif", "slice10.tif"]
    with read_stack(tmp_path) as stack:
        assert stack.shape == (3, 8, 10) and stack.storage == "files" and not stack.is_2d
        assert stack.scale == (1.0, 0.5, 0.25)
        np.testing.assert_array_equal(stack[2], slices[10])
        np.testing.assert_array_equal(stack.to_numpy(), np.stack([slices[n] for n in (1, 2, 10)]))


def test_folder_of_rgb_pngs(tmp_path, rng):
    images = rng.integers(0, 255, (2, 8, 10, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        iio.imwrite(tmp_path / f"{i}.png", image)
    with read_stack(tmp_path) as stack:
        assert stack.shape == (2, 8, 10, 3) and stack.rgb and stack.scale == (1.0, 1.0, 1.0)
        np.testing.assert_array_equal(stack.to_numpy(), images)


@pytest.mark.parametrize(
    "odd",
    [np.zeros((8, 12), np.uint8), np.zeros((8, 10), np.uint16), np.zeros((8, 10, 3), np.uint8)],
)
def test_folder_with_a_mismatched_image_names_it(tmp_path, odd):
    for i in range(3):
        tifffile.imwrite(tmp_path / f"{i}.tif", np.zeros((8, 10), np.uint8))
    tifffile.imwrite(tmp_path / "7.tif", odd)
    with pytest.raises(InputError, match=r"7\.tif.*must match"):
        read_stack(tmp_path)


def test_folder_with_a_stack_in_it_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 10), np.uint8))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((2, 8, 10), np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match=r"b\.tif.*2D images"):
        read_stack(tmp_path)


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(InputError, match="no .tif"):
        read_stack(tmp_path)
    assert list_images(tmp_path) == []


# --- bad input ---------------------------------------------------------------------------------


def _assert_one_line_naming(error: pytest.ExceptionInfo, path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message and str(path) in message


def test_missing_path(tmp_path):
    path = tmp_path / "nothing.tif"
    with pytest.raises(InputError) as error:
        read_stack(path)
    _assert_one_line_naming(error, path)


@pytest.mark.parametrize("name", ["fake.tif", "fake.png", "empty.tif"])
def test_file_that_is_not_an_image(tmp_path, name):
    path = tmp_path / name
    path.write_text("" if name.startswith("empty") else "just some text\nover two lines\n")
    with pytest.raises(InputError) as error:
        read_stack(path)
    _assert_one_line_naming(error, path)


@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [
        ((7,), {}),
        ((2, 2, 2, 8, 10), {"photometric": "minisblack"}),
        ((2, 3, 8, 10), {"photometric": "minisblack"}),
        ((8, 10, 2), {"photometric": "minisblack", "planarconfig": "contig"}),
    ],
    ids=["1d", "5d", "4d-not-rgb", "two-samples"],
)
def test_layouts_that_make_no_sense(tmp_path, shape, kwargs):
    path = tmp_path / "odd.tif"
    tifffile.imwrite(path, np.zeros(shape, np.uint8), **kwargs)
    with pytest.raises(InputError, match="unsupported image layout") as error:
        read_stack(path)
    _assert_one_line_naming(error, path)


def test_stack_repr_names_file(tmp_path):
    tifffile.imwrite(tmp_path / "x.tif", np.zeros((8, 10), np.uint8))
    with read_stack(tmp_path / "x.tif") as stack:
        assert isinstance(stack, Stack) and "x.tif" in repr(stack)

"""``unet-loop`` output formats other tools read (OME-TIFF, OME-Zarr) and ``unet-loop export``."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import tifffile
import zarr

from napari_unet_loop.cli import main
from napari_unet_loop.core.io.read import read_image, read_scale
from napari_unet_loop.core.model.modelfile import load_model, new_model, save_model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exchange")
    image = np.random.default_rng(4).integers(0, 255, (2, 32, 40), dtype=np.uint8)
    tifffile.imwrite(
        folder / "stack.tif",
        image,
        imagej=True,
        resolution=(4.0, 4.0),
        metadata={"spacing": 0.5, "unit": "um"},
    )
    save_model(
        new_model(["background", "cell"], depth=2, base_channels=4, name="tiny"),
        folder / "tiny.safetensors",
    )
    return folder


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_segment_to_ome_tiff_and_ome_zarr(data, tmp_path, capsys):
    model = data / "tiny.safetensors"
    for name in ("seg.tif", "seg.ome.tif", "seg.zarr"):
        code, _, err = _run(
            capsys, "segment", data / "stack.tif", "-o", tmp_path / name, "--model", model
        )
        assert code == 0, err
    with tifffile.TiffFile(tmp_path / "seg.ome.tif") as tif:
        assert tif.is_ome and tif.series[0].axes == "ZYX"
    labels = read_image(tmp_path / "seg.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "seg.ome.tif"), labels)
    np.testing.assert_array_equal(read_image(tmp_path / "seg.zarr/labels/classes"), labels)
    assert read_scale(tmp_path / "seg.zarr/labels/classes") == (0.5, 0.25, 0.25)
    root = zarr.open_group(tmp_path / "seg.zarr", mode="r")
    assert root["labels/classes"].attrs["image-label"]["properties"][0]["class"] == "cell"


def test_export_writes_a_package_the_loader_takes(data, tmp_path, capsys):
    pytest.importorskip("bioimageio.spec", reason="bioimageio.spec not installed ([bioimageio])")
    out = tmp_path / "tiny.zip"
    code, stdout, err = _run(
        capsys, "export", data / "tiny.safetensors", "-o", out, "--author", "A. Person"
    )
    assert code == 0, err
    assert stdout.strip() == f"wrote {out}"
    with zipfile.ZipFile(out) as archive:
        assert "rdf.yaml" in archive.namelist()
    assert load_model(out).class_names == ["background", "cell"]
    for name, model in (("file.tif", data / "tiny.safetensors"), ("package.tif", out)):
        code, _, err = _run(
            capsys, "segment", data / "stack.tif", "-o", tmp_path / name, "--model", model
        )
        assert code == 0, err  # segment --model takes the package, with the same labels
    np.testing.assert_array_equal(
        read_image(tmp_path / "package.tif"), read_image(tmp_path / "file.tif")
    )


def test_export_errors_are_one_line(data, tmp_path, capsys):
    for target in (tmp_path / "missing" / "m.zip", tmp_path / "m.tar"):
        code, _, err = _run(capsys, "export", data / "tiny.safetensors", "-o", target)
        assert code == 2 and err.count("\n") == 1 and "unet-loop export: error:" in err
    assert list(tmp_path.iterdir()) == []

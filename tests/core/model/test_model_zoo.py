"""bioimage.io packages: export passes bioimage.io's model test; import gives the same labels."""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
import pytest
import torch
import yaml

from napari_unet_loop.core.errors import ModelFileError
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.model import model_package, model_zoo
from napari_unet_loop.core.model.modelfile import load_model, new_model
from napari_unet_loop.core.model.registry import shipped_models


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    pytest.importorskip("bioimageio.spec", reason="bioimageio.spec not installed ([bioimageio])")
    from napari_unet_loop.core.model.model_zoo import export_model

    model = new_model(["background", "nucleus"], depth=2, base_channels=4, seed=0, name="tiny.1")
    model.provenance = {
        "data": {"images": ["cells/train.tif"], "slices": "0-3"},
        "held_out_metrics": {"dice_mean": {"nucleus": 0.75}},
    }
    path = tmp_path_factory.mktemp("zoo") / "tiny.zip"
    return model, export_model(model, path)


def test_exported_then_imported_gives_identical_labels(package):
    model, path = package
    image = np.random.default_rng(3).integers(0, 255, (2, 40, 52), dtype=np.uint8)
    imported = load_model(path)  # the loader Segment and Retrain use
    assert imported.class_names == model.class_names and imported.name == "tiny.1"
    np.testing.assert_array_equal(predict(image, imported).labels, predict(image, model).labels)


def test_the_package_holds_every_weight_format_and_our_metadata(package):
    model, path = package
    with zipfile.ZipFile(path) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
        names = set(archive.namelist())
    formats = {"pytorch_state_dict", "torchscript"} | (
        {"onnx"} if model_zoo.onnx_available() else set()
    )
    assert set(rdf["weights"]) == formats
    assert {"unet.py", "cover.png", "test_input.npy", "test_output.npy", "README.md"} <= names
    steps = {d["id"]: d for d in rdf["inputs"][0]["preprocessing"]}  # and ensure_dtype
    assert steps["scale_range"]["kwargs"]["max_percentile"] == model.normalization.high
    assert "softmax" in [d["id"] for d in rdf["outputs"][0]["postprocessing"]]
    assert rdf["config"]["napari_unet_loop"] == model.metadata()
    assert rdf["name"] == "tiny 1 U-Net"  # only the characters the spec allows in names
    assert rdf["training_data"]["name"] == "cells train tif (training data)"
    with zipfile.ZipFile(path) as archive:
        assert '"nucleus": 0.75' in archive.read("README.md").decode()


def test_an_unpacked_folder_loads_too(package, tmp_path):
    model, path = package
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path)
    assert load_model(tmp_path).class_names == model.class_names


def test_bioimageio_core_model_test_passes_offline(package):
    core = pytest.importorskip("bioimageio.core", reason="bioimageio.core not installed")
    start = time.perf_counter()
    summary = core.test_model(str(package[1]))
    assert summary.status == "passed", summary.format()
    print(f"bioimageio.core test_model: {time.perf_counter() - start:.1f} s")


def test_a_package_of_another_architecture_is_refused_in_one_line(tmp_path):
    other = tmp_path / "stardist.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("rdf.yaml", "type: model\nname: stardist\nconfig: {stardist: {}}\n")
    with pytest.raises(ModelFileError, match="another architecture"):
        load_model(other)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable bioimage.io package"):
        load_model(tmp_path / "junk.zip")


def _rewritten(path, folder, *, rdf=None, weights=None):
    """A copy of the package at ``path`` with its rdf or weights replaced."""
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    if rdf is not None:
        description = yaml.safe_load((folder / "rdf.yaml").read_text())
        rdf(description)
        (folder / "rdf.yaml").write_text(yaml.safe_dump(description))
    if weights is not None:
        buffer = io.BytesIO()
        torch.save(weights, buffer)
        (folder / "weights.pt").write_bytes(buffer.getvalue())
    return folder


def test_packages_we_cannot_take_are_refused_in_one_line(package, tmp_path, monkeypatch):
    path = package[1]
    torchscript_only = _rewritten(
        path, tmp_path / "ts", rdf=lambda d: d["weights"].pop("pytorch_state_dict")
    )
    with pytest.raises(ModelFileError, match="no pytorch_state_dict weights"):
        load_model(torchscript_only)
    escaping = _rewritten(
        path,
        tmp_path / "esc",
        rdf=lambda d: d["weights"]["pytorch_state_dict"].update(source="../weights.pt"),
    )
    with pytest.raises(ModelFileError, match="no pytorch_state_dict weights"):
        load_model(escaping)
    not_tensors = _rewritten(path, tmp_path / "nt", weights={"w": [1, 2]})
    with pytest.raises(ModelFileError, match="not a table of tensors"):
        load_model(not_tensors)
    monkeypatch.setattr(model_package, "MAX_WEIGHTS_BYTES", 1000)
    with pytest.raises(ModelFileError, match="weights.pt is over the"):
        load_model(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(shipped_models()))
def test_every_shipped_model_passes_bioimageio_model_test(name, tmp_path):
    core = pytest.importorskip("bioimageio.core", reason="bioimageio.core not installed")
    model = load_model(name)
    start = time.perf_counter()
    path = model_zoo.export_model(model, tmp_path / f"{name}.zip")
    exported = time.perf_counter()
    summary = core.test_model(str(path))
    done = time.perf_counter()
    assert summary.status == "passed", summary.format()
    imported = load_model(path)  # the same weights, so the same labels
    assert imported.metadata() == model.metadata()
    for key, value in model.network.state_dict().items():
        assert torch.equal(imported.network.state_dict()[key], value), key
    print(f"{name}: export {exported - start:.1f} s, model test {done - exported:.1f} s")


def test_onnx_weights_take_any_size_the_package_allows(package):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    model, path = package
    with zipfile.ZipFile(path) as archive:
        session = ort.InferenceSession(archive.read("weights.onnx"))
    x = np.random.default_rng(0).normal(size=(2, 1, 20, 28)).astype(np.float32)
    with torch.no_grad():
        expected = model.network.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"raw": x})[0], expected, atol=1e-4)


def test_a_model_that_inverts_exports_the_inversion(tmp_path):
    pytest.importorskip("bioimageio.spec", reason="bioimageio.spec not installed ([bioimageio])")
    from dataclasses import replace

    model = new_model(["background", "nucleus"], depth=2, base_channels=4, seed=0, name="dark")
    model.normalization = replace(model.normalization, polarity="invert")
    path = model_zoo.export_model(model, tmp_path / "dark.zip")
    with zipfile.ZipFile(path) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
    steps = [s for s in rdf["inputs"][0]["preprocessing"] if s["id"] != "ensure_dtype"]
    assert [s["id"] for s in steps] == ["scale_range", "scale_linear"]
    assert (steps[1]["kwargs"]["gain"], steps[1]["kwargs"]["offset"]) == (-1.0, 1.0)
    core = pytest.importorskip("bioimageio.core", reason="bioimageio.core not installed")
    summary = core.test_model(str(path))
    assert summary.status == "passed", summary.format()

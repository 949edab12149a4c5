"""bioimage.io packages: export passes bioimage.io's model test; import gives the same labels."""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pytest

from napari_unet_loop.core.errors import ModelFileError
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.model.modelfile import load_model, new_model


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    pytest.importorskip("bioimageio.spec", reason="bioimageio.spec not installed ([bioimageio])")
    from napari_unet_loop.core.model.model_zoo import export_model

    model = new_model(["background", "nucleus"], depth=2, base_channels=4, seed=0, name="tiny")
    path = tmp_path_factory.mktemp("zoo") / "tiny.zip"
    return model, export_model(model, path)


def test_exported_then_imported_gives_identical_labels(package):
    model, path = package
    image = np.random.default_rng(3).integers(0, 255, (2, 40, 52), dtype=np.uint8)
    imported = load_model(path)  # the loader Segment and Retrain use
    assert imported.class_names == model.class_names and imported.name == "tiny"
    np.testing.assert_array_equal(predict(image, imported).labels, predict(image, model).labels)


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

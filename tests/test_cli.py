"""The unet-loop command line: round trips and one-line errors for every bad input."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from napari_unet_loop.cli import main
from napari_unet_loop.core.io.read import read_image, read_scale
from napari_unet_loop.core.io.write import write_labels
from napari_unet_loop.core.model.modelfile import load_model, new_model, save_model
from napari_unet_loop.core.synthetic import make_membrane_stack

ISBI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "isbi2012"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    image, labels = make_membrane_stack((3, 64, 80), seed=1)
    tifffile.imwrite(
        folder / "stack.tif",
        image,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"spacing": 0.5, "unit": "um"},
    )
    write_labels(folder / "truth.tif", labels)
    (folder / "slices").mkdir()
    for z in range(3):
        tifffile.imwrite(folder / "slices" / f"s{z}.tif", image[z])
    model = new_model(["interior", "membrane"], depth=2, base_channels=4)
    save_model(model, folder / "tiny.safetensors")
    return folder


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_segment_writes_a_label_stack_with_scale(data, tmp_path, capsys):
    out = tmp_path / "labels.tif"
    code, _, err = _run(
        capsys,
        "segment",
        data / "stack.tif",
        "-o",
        out,
        "--model",
        data / "tiny.safetensors",
        "--device",
        "cpu",
    )
    assert code == 0, err
    labels = read_image(out)
    assert labels.shape == (3, 64, 80) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1}
    with tifffile.TiffFile(out) as tif:
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.5)


def test_segment_folder_with_instances_and_probabilities(data, tmp_path, capsys):
    out, prob = tmp_path / "inst.tif", tmp_path / "prob.tif"
    code, _, err = _run(
        capsys,
        "segment",
        data / "slices",
        "-o",
        out,
        "--instances",
        "--probabilities",
        prob,
        "--model",
        data / "tiny.safetensors",
    )
    assert code == 0, err
    assert read_image(out).shape == (3, 64, 80)
    with tifffile.TiffFile(prob) as tif:  # Z×C×Y×X, the classes as ImageJ channels
        assert tif.series[0].axes == "ZCYX"
        probabilities = tif.asarray()
    assert probabilities.dtype == np.float32 and probabilities.shape == (3, 2, 64, 80)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


def test_segment_zarr_in_and_out(data, tmp_path, capsys):
    image = read_image(data / "stack.tif")
    zarr.create_array(str(tmp_path / "stack.zarr"), data=image, chunks=(1, 64, 80))
    out = tmp_path / "labels.zarr"
    code, _, err = _run(
        capsys, "segment", tmp_path / "stack.zarr", "-o", out, "--model", data / "tiny.safetensors"
    )
    assert code == 0, err
    reference = tmp_path / "labels.tif"
    _run(
        capsys, "segment", data / "stack.tif", "-o", reference, "--model", data / "tiny.safetensors"
    )
    np.testing.assert_array_equal(read_image(out / "labels/classes"), read_image(reference))


@pytest.mark.slow
def test_segment_on_a_local_cluster(data, tmp_path, capsys):
    out, reference = tmp_path / "cluster.tif", tmp_path / "single.tif"
    code, _, err = _run(
        capsys,
        "segment",
        data / "stack.tif",
        "-o",
        out,
        "--scheduler",
        "local",
        "--chunk-size",
        "32",
        "--model",
        data / "tiny.safetensors",
    )
    assert code == 0, err
    _run(
        capsys, "segment", data / "stack.tif", "-o", reference, "--model", data / "tiny.safetensors"
    )
    np.testing.assert_array_equal(read_image(out), read_image(reference))
    assert read_scale(out) == read_scale(reference)


def test_train_then_evaluate_round_trip(data, tmp_path, capsys):
    model_path = tmp_path / "trained.safetensors"
    code, out, err = _run(
        capsys,
        "train",
        "--images",
        data / "stack.tif",
        "--labels",
        data / "truth.tif",
        "--slices",
        "0-1",
        "--val-slices",
        "2",
        "--classes",
        "interior,membrane",
        "--iterations",
        "3",
        "--val-every",
        "3",
        "--patch-size",
        "32",
        "--batch-size",
        "2",
        "--depth",
        "2",
        "--base-channels",
        "4",
        "--schedule",
        "cosine",
        "--elastic",
        "2",
        "-o",
        model_path,
    )
    assert code == 0, err
    model = load_model(model_path)
    assert model.class_names == ["interior", "membrane"]
    assert model.provenance["training"][-1]["iterations"] == 3
    assert model.provenance["training"][-1]["config"]["schedule"] == "cosine"
    assert model.provenance["data"]["val_slices"] == "2"
    pred = tmp_path / "pred.tif"
    assert _run(capsys, "segment", data / "stack.tif", "-o", pred, "--model", model_path)[0] == 0
    code, out, err = _run(capsys, "evaluate", pred, data / "truth.tif", "--slices", "1-2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert [s["slice"] for s in report["per_slice"]] == [1, 2]
    assert 0 <= report["pixel_error"] <= 1 and 0 <= report["adapted_rand_error"] <= 1
    information = report["variation_of_information"]
    assert information["total"] == pytest.approx(information["split"] + information["merge"])
    code, out, _ = _run(capsys, "evaluate", pred, data / "truth.tif")
    assert "mean" in out and "pixel error" in out


def test_fine_tune_leaves_the_source_model_file_alone(data, tmp_path, capsys):
    before = (data / "tiny.safetensors").read_bytes()
    code, _, err = _run(
        capsys,
        "train",
        "--images",
        data / "stack.tif",
        "--labels",
        data / "truth.tif",
        "--from",
        data / "tiny.safetensors",
        "--iterations",
        "2",
        "--patch-size",
        "32",
        "--batch-size",
        "2",
        "-o",
        tmp_path / "tuned",
    )
    assert code == 0, err
    assert (data / "tiny.safetensors").read_bytes() == before
    assert (tmp_path / "tuned.safetensors").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["segment", "{d}/missing.tif", "-o", "{t}/o.tif", "--model", "{d}/tiny.safetensors"],
            "missing.tif",
        ),
        (
            ["segment", "{d}/stack.tif", "-o", "{t}/o.tif", "--model", "no-such-model"],
            "unknown model",
        ),
        (["segment", "{d}/stack.tif", "-o", "{t}/o.tif", "--model", "{d}/truth.tif"], "truth.tif"),
        (
            [
                "segment",
                "{d}/stack.tif",
                "-o",
                "{t}/nowhere/o.tif",
                "--model",
                "{d}/tiny.safetensors",
            ],
            "nowhere",
        ),
        (
            ["segment", "{d}/notes.tif", "-o", "{t}/o.tif", "--model", "{d}/tiny.safetensors"],
            "notes.tif",
        ),
        (
            ["segment", "{d}/stack5d.tif", "-o", "{t}/o.tif", "--model", "{d}/tiny.safetensors"],
            "stack5d.tif",
        ),
        (
            [
                "segment",
                "{d}/stack.tif",
                "-o",
                "{t}/o.tif",
                "--model",
                "{d}/tiny.safetensors",
                "--device",
                "tpu",
            ],
            "unknown device",
        ),
        (
            ["train", "--images", "{d}/stack.tif", "--labels", "{d}/short.tif", "-o", "{t}/m"],
            "2 label images",
        ),
        (
            ["train", "--images", "{d}/stack.tif", "--labels", "{d}/small.tif", "-o", "{t}/m"],
            "shape",
        ),
        (
            [
                "train",
                "--images",
                "{d}/stack.tif",
                "--labels",
                "{d}/truth.tif",
                "--slices",
                "0-9",
                "-o",
                "{t}/m",
            ],
            "out of range",
        ),
        (
            ["train", "--images", "{d}/stack.tif", "--labels", "{d}/stack.tif", "-o", "{t}/m"],
            "label",
        ),
        (["evaluate", "{d}/truth.tif", "{d}/short.tif"], "shape"),
    ],
)
def test_bad_input_is_one_line_and_no_output(data, tmp_path, capsys, argv, message):
    (data / "notes.tif").write_text("not an image")
    tifffile.imwrite(data / "stack5d.tif", np.zeros((2, 2, 2, 8, 8), np.uint8))
    write_labels(data / "short.tif", np.zeros((2, 64, 80), np.uint8))
    write_labels(data / "small.tif", np.zeros((3, 32, 80), np.uint8))
    argv = [a.format(d=data, t=tmp_path) for a in argv]
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "m.safetensors").exists()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.skipif(shutil.which("unet-loop") is None, reason="console script not installed")
def test_console_script_reports_errors_without_traceback(tmp_path):
    out = subprocess.run(
        ["unet-loop", "segment", str(tmp_path / "none.tif"), "-o", str(tmp_path / "o.tif")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "none.tif" in out.stderr


@pytest.mark.skipif(not ISBI.is_dir(), reason="ISBI 2012 data not found beside the checkout")
def test_evaluate_on_isbi_labels_against_themselves(capsys):
    labels = ISBI / "train-labels.tif"
    code, out, err = _run(
        capsys,
        "evaluate",
        labels,
        labels,
        "--truth-map",
        "255:0,0:1",
        "--prediction-map",
        "255:0,0:1",
        "--slices",
        "24-29",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["pixel_error"] == 0 and report["mean_over_slices"]["dice"]["class 1"] == 1
    assert report["adapted_rand_error"] == 0
    assert report["variation_of_information"]["total"] == pytest.approx(0, abs=1e-12)

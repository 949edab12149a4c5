"""Fault injection: bad inputs, hostile model files, a full disk and real signals.

Every bad input must end as exit status 2 with one line on stderr and no traceback, write no
output, and leave every file that was there byte-identical. Signals must leave no temporary
file behind (after the next run, for SIGKILL) and no final file unless it is complete.
"""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import zarr

from napari_unet_loop.cli import main
from napari_unet_loop.core.errors import ModelFileError, TrainingDivergedError
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.io.write import write_labels
from napari_unet_loop.core.model.modelfile import load_model, new_model, save_model
from napari_unet_loop.core.training import train as training
from napari_unet_loop.core.training.train import TrainConfig, run_to_end, train

SRC = Path(__file__).resolve().parents[1] / "src"


def _tiny_model():
    return new_model(["background", "foreground"], depth=2, base_channels=4)


def _rewrite_model(source: Path, target: Path, edit_meta=None, edit_state=None) -> Path:
    """A copy of a model file with its metadata and/or tensors changed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as f:
        meta = json.loads(f.metadata()["napari_unet_loop"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    if edit_meta:
        edit_meta(meta)
    if edit_state:
        edit_state(state)
    save_file(state, str(target), metadata={"napari_unet_loop": json.dumps(meta)})
    return target


def _header_file(path: Path, header: bytes) -> Path:
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """Small inputs, good and bad, shared by the table below (never written to by a test)."""
    folder = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (2, 32, 32)).astype(np.uint8)
    tifffile.imwrite(folder / "img.tif", image)
    write_labels(folder / "lab.tif", (image > 127).astype(np.uint8))
    zarr.create_array(str(folder / "img.zarr"), shape=(2, 32, 32), dtype="u1")[:] = image
    model = save_model(_tiny_model(), folder / "m.safetensors")
    tifffile.imwrite(
        folder / "rgb.tif", rng.integers(0, 2, (32, 32, 3), np.uint8), photometric="rgb"
    )
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        spoilt = image.astype(np.float32)
        spoilt[1, 5:15, 5:15] = value
        tifffile.imwrite(folder / f"{name}.tif", spoilt)
    tifffile.imwrite(folder / "complex.tif", image.astype(np.complex64))
    # a compressed stack cut short, and an OME-TIFF whose SizeZ promises planes it lacks
    tifffile.imwrite(
        folder / "whole.tif", rng.integers(0, 255, (5, 32, 32), np.uint8), compression="zlib"
    )
    data = (folder / "whole.tif").read_bytes()
    (folder / "cut.tif").write_bytes(data[: len(data) // 2])
    tifffile.imwrite(folder / "ome.ome.tif", image, metadata={"axes": "ZYX"})
    with tifffile.TiffFile(folder / "ome.ome.tif") as tif:
        xml = tif.ome_metadata.replace('SizeZ="2"', 'SizeZ="7"')
    tifffile.tiffcomment(folder / "ome.ome.tif", xml.encode())
    for name, multiscales in (
        ("escape", [{"datasets": [{"path": "../../x"}]}]),
        ("nodatasets", [{}]),
        ("emptydatasets", [{"datasets": []}]),
    ):
        group = zarr.open_group(str(folder / f"{name}.zarr"), mode="w")
        group.create_array("0", shape=(32, 32), dtype="u1")
        group.attrs["multiscales"] = multiscales
    # hostile model files
    arch = lambda **kw: lambda m: m["architecture"].update(kw)  # noqa: E731
    norm = lambda **kw: lambda m: m["normalization"].update(kw)  # noqa: E731
    nan_weight = lambda s: s["head.weight"].fill_(float("nan"))  # noqa: E731

    def int_weights(state):
        for key, value in state.items():
            if value.is_floating_point():
                state[key] = value.to(torch.int32)

    for name, meta, state in (
        ("wide", arch(base_channels=400), None),
        ("deep", arch(depth=99), None),
        ("mismatch", arch(base_channels=8), None),
        ("nanweights", None, nan_weight),
        ("intweights", None, int_weights),
        ("scale0", norm(mode="scale", scale=0), None),
        ("scaleabc", norm(mode="scale", scale="abc"), None),
        ("newlines", lambda m: m.update(format="x\nFAKE LINE\r\x1b[2K"), None),
    ):
        _rewrite_model(model, folder / f"{name}.safetensors", meta, state)
    _header_file(folder / "huge.safetensors", b" " * (9 * 2**20))
    _header_file(folder / "bomb.safetensors", b'{"a":[' + b"{}," * 300_000 + b"{}]}")
    return folder


# (arguments, a word the one-line message must hold); {d} is the inputs, {t} a fresh folder
SEG = ["segment", "{d}/img.tif", "-o", "{t}/o.tif", "--model", "{d}/m.safetensors"]
TRAIN = [
    "train",
    "--images",
    "{d}/img.tif",
    "--labels",
    "{d}/lab.tif",
    "-o",
    "{t}/m",
    "--iterations",
    "2",
    "--patch-size",
    "16",
    "--batch-size",
    "2",
    "--depth",
    "2",
    "--base-channels",
    "4",
]
CASES = {
    # outputs that are inputs
    "segment -o input": (["segment", "{d}/img.tif", "-o", "{d}/img.tif"], "input"),
    "segment -o input zarr": (["segment", "{d}/img.zarr", "-o", "{d}/img.zarr"], "input"),
    "segment -o inside input zarr": (
        ["segment", "{d}/img.zarr", "-o", "{d}/img.zarr/x.zarr"],
        "input",
    ),
    "segment --probabilities == -o": ([*SEG, "--probabilities", "{t}/o.tif"], "same"),
    "segment --probabilities input": ([*SEG, "--probabilities", "{d}/img.tif"], "input"),
    "train -o --from": ([*TRAIN[:6], "{d}/m.safetensors", "--from", "{d}/m.safetensors"], "input"),
    # options
    "segment --scheduler not a url": ([*SEG, "--scheduler", "not a url"], "address"),
    "segment --tile-size -1": ([*SEG, "--tile-size", "-1"], "--tile-size"),
    "segment --batch-size 0": ([*SEG, "--batch-size", "0"], "--batch-size"),
    "segment --tile-size abc": ([*SEG, "--tile-size", "abc"], "invalid int"),
    "train --depth 0": ([*TRAIN, "--depth", "0"], "depth"),
    "train --depth 99": ([*TRAIN, "--depth", "99"], "depth"),
    "train --base-channels 0": ([*TRAIN, "--base-channels", "0"], "base-channels"),
    "train --base-channels 4096": ([*TRAIN, "--base-channels", "4096"], "base-channels"),
    "train --classes empty": ([*TRAIN, "--classes", ""], "--classes"),
    "train --classes one": ([*TRAIN, "--classes", "cell"], "--classes"),
    "train --classes twice": ([*TRAIN, "--classes", "a,a"], "--classes"),
    "train --seed -1": ([*TRAIN, "--seed", "-1"], "--seed"),
    "train --patch-size 100000": ([*TRAIN, "--patch-size", "100000"], "--patch-size"),
    "train --batch-size huge": (
        [*TRAIN, "--patch-size", "4096", "--batch-size", "64"],
        "over the limit",
    ),
    "train --learning-rate inf": ([*TRAIN, "--learning-rate", "inf"], "--learning-rate"),
    "train --learning-rate 1e30": ([*TRAIN, "--learning-rate", "1e30"], "--learning-rate"),
    "train --learning-rate nan": ([*TRAIN, "--learning-rate", "nan"], "--learning-rate"),
    "train --elastic -1": ([*TRAIN, "--elastic", "-1"], "--elastic"),
    "train --iterations 0": ([*TRAIN, "--iterations", "0"], "iterations"),
    "train --slices 2-0": ([*TRAIN, "--slices", "2-0"], "2-0"),
    "train --slices 0--2": ([*TRAIN, "--slices", "0--2"], "0--2"),
    "train -o missing folder": ([*TRAIN, "-o", "{t}/nowhere/m"], "nowhere"),
    "evaluate --slices 1-0": (["evaluate", "{d}/lab.tif", "{d}/lab.tif", "--slices", "1-0"], "1-0"),
    # data
    "train NaN image": ([*TRAIN[:2], "{d}/nan.tif", *TRAIN[3:]], "NaN"),
    "train Inf image": ([*TRAIN[:2], "{d}/inf.tif", *TRAIN[3:]], "NaN or infinite"),
    "train complex image": ([*TRAIN[:2], "{d}/complex.tif", *TRAIN[3:]], "complex"),
    "segment complex image": ([*SEG[:1], "{d}/complex.tif", *SEG[2:]], "complex"),
    "evaluate RGB": (["evaluate", "{d}/rgb.tif", "{d}/rgb.tif"], "RGB"),
    "evaluate NaN": (["evaluate", "{d}/nan.tif", "{d}/nan.tif"], "NaN"),
    "segment cut TIFF": ([*SEG[:1], "{d}/cut.tif", *SEG[2:]], "truncated"),
    "segment OME SizeZ too large": ([*SEG[:1], "{d}/ome.ome.tif", *SEG[2:]], "truncated"),
    "segment OME-Zarr path escapes": ([*SEG[:1], "{d}/escape.zarr", *SEG[2:]], "multiscales"),
    "segment OME-Zarr no datasets": ([*SEG[:1], "{d}/nodatasets.zarr", *SEG[2:]], "multiscales"),
    "segment OME-Zarr datasets []": ([*SEG[:1], "{d}/emptydatasets.zarr", *SEG[2:]], "multiscales"),
    # hostile model files
    **{
        f"model {name}": ([*SEG[:5], f"{{d}}/{name}.safetensors"], word)
        for name, word in (
            ("wide", "base_channels"),
            ("deep", "depth"),
            ("mismatch", "shape"),
            ("nanweights", "NaN"),
            ("intweights", "floating-point"),
            ("scale0", "scale"),
            ("scaleabc", "scale"),
            ("newlines", "format"),
            ("huge", "limit"),
            ("bomb", "complex"),
        )
    },
    "train --from hostile": ([*TRAIN, "--from", "{d}/nanweights.safetensors"], "NaN"),
}


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_touches_nothing(d, tmp_path, capsys, name):
    argv, word = CASES[name]
    before = _snapshot(d)
    try:
        code = main([a.format(d=d, t=tmp_path) for a in argv])
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and word in err, err
    assert _snapshot(d) == before
    assert list(tmp_path.iterdir()) == []


def test_read_only_output_folder_is_refused_before_training(d, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root may write into read-only folders")
    tmp_path.chmod(0o555)
    try:
        code = main([a.format(d=d, t=tmp_path) for a in TRAIN])
    finally:
        tmp_path.chmod(0o755)
    err = capsys.readouterr().err
    assert code == 2 and "permission denied" in err and "train:" not in err.splitlines()[0][:6]


def test_disk_full_while_writing_labels_is_one_line(d, tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tifffile.TiffWriter, "write", full)
    code = main([a.format(d=d, t=tmp_path) for a in SEG])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "No space left on device" in err[-1]
    assert not any("Traceback" in line for line in err)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_saving_a_model_is_one_line(d, tmp_path, capsys, monkeypatch):
    import safetensors.torch

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    code = main([a.format(d=d, t=tmp_path) for a in TRAIN])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "No space left on device" in err[-1], err
    assert list(tmp_path.iterdir()) == []


def test_a_non_finite_loss_stops_training_and_saves_nothing(d, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training, "_train_step", lambda *args: float("nan"))
    code = main([a.format(d=d, t=tmp_path) for a in TRAIN])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "diverged" in err[-1], err
    assert list(tmp_path.iterdir()) == []


def test_training_that_diverges_raises_and_a_nan_model_is_never_saved(tmp_path):
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    labels = (image > 0.5).astype(np.int16)
    config = TrainConfig(
        iterations=5, patch_size=16, batch_size=2, learning_rate=1e30, augment=False
    )
    with pytest.raises(TrainingDivergedError, match="diverged"):
        run_to_end(train(_tiny_model(), image, labels, config=config))
    broken = _tiny_model()
    with torch.no_grad():
        broken.network.head.weight.fill_(float("inf"))
    with pytest.raises(ModelFileError, match="non-finite"):
        save_model(broken, tmp_path / "broken")
    big = _tiny_model()
    with torch.no_grad():
        big.network.head.weight.fill_(1e6)  # above fp16's range
    with pytest.raises(ModelFileError, match="half precision"):
        save_model(big, tmp_path / "big", half=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_do_not_spoil_their_slice(bad):
    image = np.random.default_rng(3).random((48, 48)).astype(np.float32)
    spoilt = image.copy()
    spoilt[10, 10] = bad
    model = _tiny_model()
    clean, result = predict(image, model, device="cpu"), predict(spoilt, model, device="cpu")
    assert np.isfinite(result.probabilities).all()
    # the percentiles lose one pixel, nothing else changes
    assert (result.labels == clean.labels).mean() > 0.99


def test_a_tiny_intensity_range_is_not_flattened():
    image = np.random.default_rng(4).random((48, 48)).astype(np.float32)
    model = _tiny_model()
    wide, tiny = predict(image, model, device="cpu"), predict(image * 1e-9, model, device="cpu")
    np.testing.assert_allclose(tiny.probabilities, wide.probabilities, atol=1e-3)


def test_hostile_strings_are_cleaned(d, tmp_path):
    path = _rewrite_model(
        d / "m.safetensors",
        tmp_path / "names.safetensors",
        lambda m: m.update(
            name="evil\nTraceback (most recent call last):" + "x" * 500,
            class_names=["a\nb", "c\r\x1b[31md"],
        ),
    )
    model = load_model(path)
    assert "\n" not in model.name and len(model.name) <= 100
    assert all("\n" not in c and "\x1b" not in c and "\r" not in c for c in model.class_names)


def test_hostile_model_files_are_refused_fast_and_small(d):
    """Each hostile file in a fresh process: under 1 s and 100 MB of peak memory each."""
    names = ["wide", "deep", "mismatch", "nanweights", "huge", "bomb"]
    script = (
        "import resource, sys, time\n"
        "from napari_unet_loop.core.model.modelfile import load_model\n"
        f"load_model({str(d / 'm.safetensors')!r})\n"
        "for path in sys.argv[1:]:\n"
        "    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    start = time.perf_counter()\n"
        "    try:\n"
        "        load_model(path)\n"
        "    except Exception as exc:\n"
        "        kind = type(exc).__name__\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base\n"
        "    print(kind, time.perf_counter() - start, peak // 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *(str(d / f"{n}.safetensors") for n in names)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for name, line in zip(names, out.stdout.splitlines(), strict=True):
        kind, seconds, megabytes = line.split()
        assert kind == "ModelFileError", (name, line)
        assert float(seconds) < 1.0 and int(megabytes) < 100, (name, line)


# --- real signals ----------------------------------------------------------------------------


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith("."))


def _start_segment(folder: Path, output: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "napari_unet_loop.cli",
            "segment",
            str(folder / "big.tif"),
            "-o",
            str(folder / output),
            "--model",
            str(folder / "m.safetensors"),
            "--device",
            "cpu",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )


def _when_writing(process: subprocess.Popen, folder: Path, output: str) -> None:
    """Wait until the run has its temporary output open (it starts slowly on a busy machine)."""
    end = time.monotonic() + 600
    while time.monotonic() < end and process.poll() is None:
        if any(p.name.startswith(f".{output}.") for p in _temporaries(folder)):
            return
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"the run ended before writing: {process.communicate()[1][-500:]}")


@pytest.fixture(scope="module")
def signal_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signals")
    image = np.random.default_rng(5).integers(0, 255, (200, 64, 64)).astype(np.uint8)
    tifffile.imwrite(folder / "big.tif", image)
    save_model(_tiny_model(), folder / "m.safetensors")
    return folder


@pytest.mark.parametrize(
    "signum, code, word",
    [
        (signal.SIGTERM, 143, "terminated"),
        (signal.SIGINT, 130, "interrupted"),
    ],
)
def test_a_signal_mid_write_leaves_no_output_and_no_temporary(signal_folder, signum, code, word):
    output = f"out-{signum}.zarr" if signum == signal.SIGTERM else f"out-{signum}.tif"
    process = _start_segment(signal_folder, output)
    _when_writing(process, signal_folder, output)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.strip().splitlines()[-1].endswith(word)
    assert "Traceback" not in err and "Exception ignored" not in err
    assert not (signal_folder / output).exists()
    assert _temporaries(signal_folder) == []


@pytest.mark.slow
def test_sigkill_leftovers_are_swept_by_the_next_run(signal_folder):
    process = _start_segment(signal_folder, "killed.tif")
    _when_writing(process, signal_folder, "killed.tif")
    process.kill()
    process.wait()
    assert not (signal_folder / "killed.tif").exists()
    assert [p.name.startswith(".killed.tif.") for p in _temporaries(signal_folder)] == [True]
    tifffile.imwrite(signal_folder / "small.tif", np.zeros((16, 16), np.uint8))
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_unet_loop.cli",
            "segment",
            str(signal_folder / "small.tif"),
            "-o",
            str(signal_folder / "small-labels.tif"),
            "--model",
            str(signal_folder / "m.safetensors"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert finished.returncode == 0, finished.stderr
    assert _temporaries(signal_folder) == []

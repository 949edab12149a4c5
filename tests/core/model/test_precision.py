import json
import warnings

import numpy as np
import pytest
import torch

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.model import precision
from napari_unet_loop.core.model.modelfile import load_model
from napari_unet_loop.core.model.precision import (
    ENV_PRECISION,
    cache_dir,
    check_precision,
    cpu_decision,
    resolve_precision,
)
from napari_unet_loop.core.synthetic import make_membrane_stack
from napari_unet_loop.core.training.train import TrainConfig, train

CPU = torch.device("cpu")


@pytest.fixture
def auto(monkeypatch, tmp_path):
    """``auto`` as a user gets it: no forced precision, no decision remembered yet."""
    monkeypatch.delenv(ENV_PRECISION)
    monkeypatch.setenv(precision.ENV_CACHE_DIR, str(tmp_path))
    monkeypatch.setattr(precision, "_decided", {})


def cpu_bf16_autocast() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns, and disables it, where unsupported
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.bfloat16


def test_explicit_choices():
    assert resolve_precision("fp32", CPU) is None
    assert resolve_precision(" BF16 ", CPU) is torch.bfloat16
    with pytest.raises(InputError, match="fp16 runs on a GPU"):
        resolve_precision("fp16", CPU)
    with pytest.raises(InputError, match="unknown precision"):
        check_precision("int8")


def test_environment_replaces_auto_but_not_an_explicit_choice(monkeypatch):
    monkeypatch.setenv(ENV_PRECISION, "bf16")
    assert resolve_precision("auto", CPU) is torch.bfloat16
    assert resolve_precision("fp32", CPU) is None
    monkeypatch.setenv(ENV_PRECISION, "fast")
    with pytest.raises(InputError, match="unknown precision 'fast'"):
        resolve_precision("auto", CPU)


def test_auto_measures_once_and_caches_per_machine(auto, monkeypatch):
    calls = []

    def fake_calibrate():
        calls.append(1)
        return {"precision": "bf16", "supported": True, "speedup": 2.0}

    monkeypatch.setattr(precision, "calibrate", fake_calibrate)
    assert resolve_precision("auto", CPU) is torch.bfloat16
    assert resolve_precision("auto", CPU) is torch.bfloat16
    monkeypatch.setattr(precision, "_decided", {})  # a new process reads the file
    assert resolve_precision("auto", CPU) is torch.bfloat16
    assert len(calls) == 1
    ((key, stored),) = json.loads((cache_dir() / precision.CACHE_FILE).read_text()).items()
    assert precision.cpu_model() in key and torch.__version__ in key
    assert stored["precision"] == "bf16"


def test_auto_never_picks_unsupported_bf16(auto, monkeypatch):
    monkeypatch.setattr(precision, "bf16_supported", lambda: False)
    decision = cpu_decision()
    assert decision["precision"] == "fp32" and decision["bf16_s"] is None  # nothing timed
    assert resolve_precision("auto", CPU) is None


@pytest.mark.skipif(not precision.bf16_supported(), reason="this CPU has no native bf16")
def test_calibration_picks_bf16_only_when_faster(auto):
    decision = cpu_decision()
    faster = decision["speedup"] >= precision.MIN_SPEEDUP
    assert decision["precision"] == ("bf16" if faster else "fp32")


def test_unreadable_cache_is_measured_again(auto, monkeypatch):
    monkeypatch.setattr(precision, "bf16_supported", lambda: False)
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / precision.CACHE_FILE).write_text("{not json")
    assert cpu_decision()["precision"] == "fp32"


def test_training_checks_its_precision_at_once():
    with pytest.raises(InputError, match="unknown precision"):
        TrainConfig(precision="half")
    image, labels = make_membrane_stack((1, 32, 32))
    with pytest.raises(InputError, match="fp16 runs on a GPU"):
        train(
            load_model("em-membranes"),
            image[0],
            labels[0].astype(np.int16),
            config=TrainConfig(device="cpu", precision="fp16", iterations=1, patch_size=16),
        )


@pytest.mark.skipif(not cpu_bf16_autocast(), reason="this torch has no CPU bf16 autocast")
def test_bf16_inference_agrees_with_fp32():
    """The accuracy gate: bf16 autocast gives the fp32 class on at least 99.9 % of pixels."""
    model = load_model("em-membranes")
    image = make_membrane_stack((1, 128, 128), seed=3)[0][0]
    fp32 = predict(image, model, device="cpu", precision="fp32")
    bf16 = predict(image, model, device="cpu", precision="bf16")
    assert np.mean(fp32.labels == bf16.labels) >= 0.999
    assert np.abs(fp32.probabilities - bf16.probabilities).max() < 0.1

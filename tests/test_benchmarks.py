"""The benchmark scripts import, parse their options and fail clearly without data."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def load_script(monkeypatch):
    """Import a script of benchmarks/ as a module (it imports its sibling ``_common``)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def load(name: str):
        path = BENCHMARKS / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look themselves up
        spec.loader.exec_module(module)
        return module

    return load


@pytest.mark.parametrize("name", ["accuracy", "loop", "startup", "speed", "memory"])
def test_help(load_script, name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script(name).main(["--help"])
    assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name", ["accuracy", "loop", "speed", "round_speed", "mixed_kinds", "freezes"]
)
def test_missing_data_is_one_clear_line(load_script, name, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        load_script(name).main(["--data", str(tmp_path / "nowhere")])
    message = str(exit_info.value.code)
    assert message.startswith(f"{name}.py: error: data not found: ")
    assert "\n" not in message


def test_startup_without_display_is_one_clear_line(load_script, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(SystemExit) as exit_info:
        load_script("startup").main([])
    message = str(exit_info.value.code)
    assert message.startswith("startup.py: error: no display")
    assert "\n" not in message


def test_bad_options_are_refused(load_script, tmp_path):
    with pytest.raises(SystemExit, match="unknown model"):
        load_script("accuracy").main(["--models", "em-membranes,cells"])
    with pytest.raises(SystemExit, match="drop --quick"):
        load_script("accuracy").main(["--quick", "--update-models"])
    with pytest.raises(SystemExit, match="at least 1"):
        load_script("accuracy").main(["--robustness-images", "0"])
    with pytest.raises(SystemExit, match="bad --ks"):
        load_script("loop").main(["--ks", "1,x"])
    with pytest.raises(SystemExit, match="bad --choices"):
        load_script("loop").main(["--choices", "random,best"])


def test_pixel_scores_pool_and_average(load_script):
    common = load_script("_common")
    perfect = np.array([[0, 1], [1, 1]], dtype=np.uint8)
    half = np.array([[0, 0], [1, 1]], dtype=np.uint8)  # one of three class-1 pixels missed
    scores = common.pixel_scores([perfect, half], [perfect, perfect], ["bg", "fg"])
    assert scores["dice_mean"]["fg"] == pytest.approx((1.0 + 0.8) / 2)
    assert scores["dice_pooled"]["fg"] == pytest.approx(2 * 5 / (2 * 5 + 1))
    assert scores["pixel_accuracy"] == pytest.approx(7 / 8)


def test_markdown_table(load_script):
    table = load_script("_common").markdown_table(["model", "Dice"], [["nuclei", "0.9000"]])
    assert table.splitlines() == ["| model | Dice |", "|---|---:|", "| nuclei | 0.9000 |"]


def _tiny_nuclei_sample(common, name="a"):
    instances = np.zeros((32, 32), dtype=np.uint16)
    instances[4:12, 4:12] = 1
    instances[18:28, 16:26] = 2
    image = np.where(instances > 0, 200, 20).astype(np.uint8)
    return common.Sample(name, image, (instances > 0).astype(np.uint8), instances)


def test_robustness_changes_keep_the_type_and_move_the_truth(load_script):
    robust = load_script("_robustness")
    sample = _tiny_nuclei_sample(load_script("_common"))
    for change in robust.CHANGES:
        changed = change.apply(sample)
        assert changed.image.dtype == np.uint8, change.name
        assert changed.classes.shape == changed.instances.shape == changed.image.shape
    half, double = robust.rescale(sample, 0.5), robust.rescale(sample, 2.0)
    assert half.image.shape == (16, 16) and double.image.shape == (64, 64)
    assert set(np.unique(double.instances)) == {0, 1, 2}
    noisy = robust.noise(sample, 0.1)
    np.testing.assert_array_equal(noisy.image, robust.noise(sample, 0.1).image)  # seeded
    flat = robust.contrast(sample, 0.25).image
    assert int(flat.max()) - int(flat.min()) < 60  # 180 grey levels apart before
    np.testing.assert_array_equal(robust.gamma(sample, 1.0).image, sample.image)


def test_robustness_scores_each_change_at_scale_1_and_auto(load_script):
    import torch

    from napari_unet_loop.core.model.modelfile import new_model

    common, robust = load_script("_common"), load_script("_robustness")
    model = new_model(["background", "nucleus"], depth=2, base_channels=4)
    # Auto enlarges these images (objects measure smaller than the recorded training scale).
    model.provenance["scale"] = {"image_scale": 60.0, "object_diameter": 30.0}
    samples = [_tiny_nuclei_sample(common, n) for n in "ab"]
    result = robust.robustness(model, samples, rgb=False, stack=False, device=torch.device("cpu"))
    assert list(result) == [c.name for c in robust.CHANGES]
    for scores in result.values():
        assert all(f > 2 for f in scores["auto_factors"])
        for mode in robust.MODES:
            assert 0 <= scores[mode]["ap_50"] <= 1
            assert set(scores[mode]["dice_mean"]) == {"background", "nucleus"}
    table = robust.robustness_table(result, model.class_names)
    assert "| scale 2× |" in table and "AP@0.5" in table


def test_robustness_of_a_membrane_stack_has_rand_error_and_vi(load_script):
    import torch

    from napari_unet_loop.core.model.modelfile import new_model

    common, robust = load_script("_common"), load_script("_robustness")
    membrane = np.zeros((32, 32), dtype=np.uint8)
    membrane[::8, :] = membrane[:, ::8] = 1
    samples = [
        common.Sample(f"slice {z}", (255 - 200 * membrane).astype(np.uint8), membrane)
        for z in range(2)
    ]
    model = new_model(["interior", "membrane"], depth=2, base_channels=4)  # no scale record
    result = robust.robustness(model, samples, rgb=False, stack=True, device=torch.device("cpu"))
    for scores in result.values():
        assert scores["auto_factors"] == [1.0]  # a model without a record is never rescaled
        assert scores["auto"] == scores["scale 1"]
        assert scores["auto"]["vi"] >= 0 and 0 <= scores["auto"]["adapted_rand_error"] <= 1
    table = robust.robustness_table(result, model.class_names)
    assert "VI (bits)" in table

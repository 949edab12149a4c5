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


@pytest.mark.parametrize("name", ["accuracy", "loop", "speed", "round_speed", "freezes"])
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
    with pytest.raises(SystemExit, match="bad --ks"):
        load_script("loop").main(["--ks", "1,x"])


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

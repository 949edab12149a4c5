"""The plain-Python loop steps: evaluation tables, CSV, the Retrain status text."""

import csv

import numpy as np
import pytest

from napari_unet_loop.app.loop import (
    RetrainReport,
    evaluate,
    slices_text,
    write_csv,
)
from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.training.train import TrainUpdate

NAMES = ["background", "membrane"]


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    truth = (rng.random((3, 16, 16)) > 0.6).astype(np.uint8)
    pred = truth.copy()
    pred[1] = 1 - pred[1]  # slice 1 completely wrong
    return pred, truth


def test_evaluate_per_slice_and_mean_rows():
    pred, truth = _pair()
    ev = evaluate(pred, truth, NAMES)
    assert ev.header == [
        "slice",
        "edited",
        "Dice background",
        "Dice membrane",
        "IoU background",
        "IoU membrane",
    ]
    assert [r[0] for r in ev.rows] == ["0", "1", "2", "mean"]
    assert ev.rows[0][2:] == ["1.0000"] * 4
    assert float(ev.rows[1][3]) == 0.0
    assert ev.mean_dice["membrane"] == pytest.approx(2 / 3)
    assert ev.scored == [0, 1, 2]


def test_evaluate_leaves_edited_slices_out_of_the_mean():
    pred, truth = _pair()
    ev = evaluate(pred, truth, NAMES, edited=[1])
    assert ev.scored == [0, 2]
    assert ev.mean_dice["membrane"] == pytest.approx(1.0)
    assert ev.rows[1][1] == "yes" and ev.rows[-1][1] == "2 slices"
    assert evaluate(pred, truth, NAMES, edited=[0, 1, 2]).scored == [0, 1, 2]


def test_evaluate_maps_isbi_ground_truth():
    pred, truth = _pair()
    isbi = np.where(truth == 1, 0, 255).astype(np.uint8)
    ev = evaluate(pred, isbi, NAMES, invert=True)
    assert ev.mean_dice["membrane"] == pytest.approx(2 / 3)
    assert "inverted" in ev.note


def test_evaluate_object_f1_of_instances():
    truth = np.zeros((2, 20, 20), np.uint16)
    truth[:, 2:6, 2:6] = 1
    truth[:, 10:15, 10:15] = 2
    pred = (truth > 0).astype(np.uint8)
    pred[1, 10:15, 10:15] = 0  # slice 1 misses one nucleus
    ev = evaluate(pred, truth, NAMES, instances=True)
    assert ev.header[-1] == "object F1"
    assert [r[-1] for r in ev.rows] == ["1.0000", "0.6667", "0.8333"]


def test_evaluate_2d_images():
    truth = np.zeros((8, 8), np.uint8)
    truth[2:5, 2:5] = 1
    ev = evaluate(truth, truth, NAMES, instances=True)
    assert [r[0] for r in ev.rows] == ["0", "mean"]


def test_evaluate_shape_mismatch_is_a_clear_error():
    pred, truth = _pair()
    with pytest.raises(InputError, match="differ in shape"):
        evaluate(pred, truth[:2], NAMES)


def test_write_csv_is_atomic_and_readable(tmp_path):
    path = write_csv(tmp_path / "m.csv", [["a", "b"], [1, 2.5], []])
    assert list(csv.reader(path.open())) == [["a", "b"], ["1", "2.5"], []]
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]
    with pytest.raises(InputError, match="does not exist"):
        write_csv(tmp_path / "nope" / "m.csv", [["a"]])


def test_slices_text_is_singular_for_one_slice():
    assert slices_text([3]) == "slice 3"
    assert slices_text([0, 1, 5]) == "slices 0, 1, 5"


def test_retrain_report_keeps_the_last_held_back_dice_and_sums_up_the_round():
    report = RetrainReport()
    first = report.add(TrainUpdate(1, 4, 0.8, None, 1.0))
    assert first == "Iteration 1/4 · loss 0.8000 · ~3 s left"
    assert "held-back Dice 0.600" in report.add(TrainUpdate(2, 4, 0.6, 0.6, 2.0))
    assert "held-back Dice 0.600" in report.add(TrainUpdate(3, 4, 0.4, None, 3.0))
    report.add(TrainUpdate(4, 4, 0.2, 0.5, 14.2, done=True))
    assert report.last_dice == 0.5 and report.best_dice == 0.6
    assert report.summary() == "4 iterations, 14 s, loss 0.500"

    class Result:
        message = "4 iterations, 14 s; 0.600 on held-back corrections vs 0.550 before"

    assert report.summary(Result()) == f"{Result.message}, loss 0.500"


def test_retrain_report_of_a_round_stopped_early():
    report = RetrainReport()
    report.add(TrainUpdate(1, 60, 0.25, None, 0.4, done=True))
    assert report.summary() == "1 iteration, 0 s, loss 0.250"
    report.add(TrainUpdate(2, 60, 0.25, 0.9, 0.8, done=True, stopped_early=True))
    assert report.summary().endswith("stopped early: the held-back corrections no longer improved")

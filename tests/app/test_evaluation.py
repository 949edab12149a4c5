"""The Dice widget's table: per-slice rows, the mean, edited slices, ISBI truth, object F1."""

import numpy as np
import pytest

from napari_unet_loop.app.evaluation import evaluate
from napari_unet_loop.core.errors import InputError

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


def test_class_names_come_from_the_layer_then_the_model_then_the_values():
    from napari_unet_loop.app.evaluation import class_names

    data = np.array([[0, 1], [2, 2]])
    assert class_names(["a", "b"], ["x", "y"], data) == ["a", "b"]
    assert class_names(None, ["x", "y"], data) == ["x", "y"]
    assert class_names(None, None, data) == ["class 0", "class 1", "class 2"]
    assert class_names(None, None, np.zeros((2, 2), int)) == ["class 0", "class 1"]

"""Every Dice in the project comes from one count, with one empty-class rule.

A hand-computed case, four classes on two 2×4 slices:

    slice 0  truth 0 0 1 1   pred 0 0 1 0      slice 1  truth 2 2 0 0   pred 2 2 2 0
                   0 0 1 1        0 1 1 1               2 2 0 0        2 0 0 0

Slice 0: class 0 TP 3, FP 1, FN 1 (Dice 6/8); class 1 likewise; classes 2 and 3 are absent
from both maps (Dice 1.0). Slice 1: classes 0 and 2 score 6/8; classes 1 and 3 are absent.
Means over slices: 0.75, 0.875, 0.875, 1.0. Pooled: 0.75, 0.75, 0.75 and 1.0 for class 3,
absent everywhere; the mean over foreground classes is (0.75 + 0.75 + 1.0) / 3.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_unet_loop.app.evaluation import evaluate
from napari_unet_loop.core.evaluation.evaluate import evaluate_arrays
from napari_unet_loop.core.evaluation.metrics import (
    ConfusionCounts,
    confusion_counts,
    mean_foreground_dice,
)

NAMES = ["c0", "c1", "c2", "c3"]
TRUTH = np.array([[[0, 0, 1, 1], [0, 0, 1, 1]], [[2, 2, 0, 0], [2, 2, 0, 0]]], np.uint8)
PRED = np.array([[[0, 0, 1, 0], [0, 1, 1, 1]], [[2, 2, 2, 0], [2, 0, 0, 0]]], np.uint8)
MEAN = {"c0": 0.75, "c1": 0.875, "c2": 0.875, "c3": 1.0}
POOLED = {"c0": 0.75, "c1": 0.75, "c2": 0.75, "c3": 1.0}
FOREGROUND = (0.75 + 0.75 + 1.0) / 3


def _pooled() -> ConfusionCounts:
    return sum(
        (confusion_counts(p, t, 4) for p, t in zip(PRED, TRUTH, strict=True)),
        ConfusionCounts.zeros(4),
    )


def test_counts_by_hand():
    counts = confusion_counts(PRED[0], TRUTH[0], 4)
    assert counts.tp.tolist() == [3, 3, 0, 0]
    assert counts.fp.tolist() == [1, 1, 0, 0]
    assert counts.fn.tolist() == [1, 1, 0, 0]
    assert counts.absent.tolist() == [False, False, True, True]
    assert counts.dice().tolist() == [0.75, 0.75, 1.0, 1.0]


def test_cli_evaluation_gives_the_hand_computed_scores():
    report = evaluate_arrays(PRED, TRUTH, class_names=NAMES).report
    assert report.mean_dice == pytest.approx(MEAN)
    assert report.stack_dice == pytest.approx(POOLED)
    assert report.absent_slices == {"c0": 0, "c1": 1, "c2": 1, "c3": 2}


def test_viewer_table_gives_the_hand_computed_scores():
    assert evaluate(PRED, TRUTH, NAMES).mean_dice == pytest.approx(MEAN)


def test_training_validation_gives_the_hand_computed_score():
    torch = pytest.importorskip("torch")
    from napari_unet_loop.core.training import train

    class Fixed(torch.nn.Module):
        """Predicts PRED slice by slice, whatever the image."""

        def __init__(self):
            super().__init__()
            self.maps = iter(PRED)

        def forward(self, x):
            one_hot = torch.nn.functional.one_hot(torch.from_numpy(next(self.maps)).long(), 4)
            return one_hot.permute(2, 0, 1)[None].float()

    pairs = [(np.zeros(t.shape, np.float32), t.astype(np.int16)) for t in TRUTH]
    score = train._validation_dice(Fixed(), pairs, 4, torch.device("cpu"), None)
    assert score == pytest.approx(FOREGROUND)
    assert mean_foreground_dice(_pooled()) == pytest.approx(FOREGROUND)


def test_unlabelled_pixels_are_left_out_of_validation():
    torch = pytest.importorskip("torch")
    from napari_unet_loop.core.evaluation.labelmap import IGNORE_INDEX
    from napari_unet_loop.core.training import train

    class Wrong(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([10.0, 0.0])[None, :, None, None].expand(1, 2, 2, 4)

    label = np.full((2, 4), IGNORE_INDEX, np.int16)
    label[0, 0] = 0  # the only labelled pixel, predicted right; class 1 absent: 1.0
    score = train._validation_dice(
        Wrong(), [(np.zeros((2, 4), np.float32), label)], 2, torch.device("cpu"), None
    )
    assert score == 1.0


def test_benchmarks_give_the_hand_computed_scores():
    sys.path.insert(0, str(Path(__file__).parents[3] / "benchmarks"))
    try:
        from _common import pixel_scores
    finally:
        sys.path.pop(0)
    scores = pixel_scores(list(PRED), list(TRUTH), NAMES)
    assert scores["dice_mean"] == pytest.approx(MEAN)
    assert scores["dice_pooled"] == pytest.approx(POOLED)

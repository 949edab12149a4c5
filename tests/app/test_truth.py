"""Choosing the ground truth and spotting two classes read the wrong way round (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet_loop.app.truth import Candidate, looks_like_labels, pick_truth, score, swap_hint
from napari_unet_loop.core.synthetic import make_membrane_stack


def test_what_looks_like_labels():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 255, (3, 32, 32), dtype=np.uint8)
    assert not looks_like_labels(raw)
    assert looks_like_labels(np.where(raw > 128, 255, 0).astype(np.uint8))  # ISBI's 0/255
    assert not looks_like_labels(np.zeros((32, 32), np.uint8))  # one value: nothing to score
    assert looks_like_labels(raw.astype(np.uint16), "nuclei_masks")  # instances: by name
    assert not looks_like_labels(np.where(raw > 128, 1.0, 0.0), "labels")  # float: an image


def test_pick_truth_prefers_label_values_of_the_prediction_shape():
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 255, (3, 16, 16), dtype=np.uint8)
    truth = (raw > 100).astype(np.uint8) * 255
    other = truth[:, :8]
    candidates = [
        Candidate("em", raw, False),
        Candidate("gt", truth, False),
        Candidate("small labels", other, True),
    ]
    assert pick_truth(candidates, (3, 16, 16)) == "gt"
    assert pick_truth(candidates[:1], (3, 16, 16)) == "em"  # nothing better: as before
    assert pick_truth(candidates, (5, 16, 16)) is None
    empty = Candidate("new labels", np.zeros((3, 16, 16), np.uint8), True)
    assert pick_truth([*candidates, empty], (3, 16, 16)) == "gt"  # an empty layer is no truth


def test_swap_is_proposed_for_inverted_two_class_truth_only():
    _, truth = make_membrane_stack((2, 48, 48), seed=0)  # 0 background, 1 membrane
    isbi = np.where(truth == 1, 0, 255).astype(np.uint8)  # 255 = background
    names = ["background", "membrane"]
    ev, hint = score(truth, isbi, names, invert=False)
    assert hint is not None and hint.swapped == pytest.approx(1.0)
    assert hint.current < 0.5 and ev.mean_dice["membrane"] < 0.5
    assert "ticking 'swap classes'" in hint.text(False) and "background" in hint.text(False)
    ev, hint = score(truth, isbi, names, invert=True)
    assert hint is None and ev.mean_dice["membrane"] == pytest.approx(1.0)
    assert swap_hint({"a": 0.5, "b": 0.5}, {"a": 0.6, "b": 0.6}) is None  # not clear enough
    _, hint = score(truth, truth, ["a", "b", "c"], invert=False)
    assert hint is None  # three classes: no swap to propose
    raw = np.random.default_rng(0).integers(1, 255, truth.shape, dtype=np.uint8)
    assert score(truth, raw, names, invert=False)[1] is None  # an image, not two-valued truth

import json

import numpy as np
import pytest

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.evaluation.metrics import (
    ConfusionCounts,
    adapted_rand_error,
    confusion_counts,
    match_instances,
    object_metrics,
    pixel_error,
    segmentation_report,
    variation_of_information,
)

# ---------------------------------------------------------------- confusion counts, Dice, IoU


def test_toy_2x2_counts_and_scores_by_hand():
    truth = np.array([[1, 1], [0, 0]])
    pred = np.array([[1, 0], [1, 0]])
    c = confusion_counts(pred, truth, 2)
    # class 1: TP (0,0), FP (1,0), FN (0,1), TN (1,1); class 0 mirrors it
    np.testing.assert_array_equal(c.tp, [1, 1])
    np.testing.assert_array_equal(c.fp, [1, 1])
    np.testing.assert_array_equal(c.fn, [1, 1])
    np.testing.assert_array_equal(c.tn, [1, 1])
    np.testing.assert_allclose(c.dice(), [0.5, 0.5])
    np.testing.assert_allclose(c.iou(), [1 / 3, 1 / 3])
    np.testing.assert_allclose(c.precision(), [0.5, 0.5])
    np.testing.assert_allclose(c.recall(), [0.5, 0.5])
    np.testing.assert_allclose(c.f1(), c.dice())
    assert c.pixel_accuracy() == 0.5


def test_three_classes_asymmetric_by_hand():
    truth = np.array([0, 1, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 2, 2, 0])
    c = confusion_counts(pred, truth, 3)
    np.testing.assert_array_equal(c.tp, [1, 2, 1])
    np.testing.assert_array_equal(c.fp, [1, 0, 1])
    np.testing.assert_array_equal(c.fn, [0, 1, 1])
    np.testing.assert_array_equal(c.tn, [4, 3, 3])
    np.testing.assert_allclose(c.dice(), [2 / 3, 4 / 5, 1 / 2])
    np.testing.assert_allclose(c.iou(), [1 / 2, 2 / 3, 1 / 3])
    np.testing.assert_allclose(c.precision(), [1 / 2, 1, 1 / 2])
    np.testing.assert_allclose(c.recall(), [1, 2 / 3, 1 / 2])
    assert c.pixel_accuracy() == pytest.approx(4 / 6)


def test_dice_and_iou_relation_holds_on_random_maps():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (32, 32))
    pred = np.where(rng.random((32, 32)) < 0.8, truth, rng.integers(0, 3, (32, 32)))
    c = confusion_counts(pred, truth, 3)
    dice, iou = c.dice(), c.iou()
    np.testing.assert_allclose(dice, 2 * iou / (1 + iou))
    assert c.pixel_accuracy() == pytest.approx(np.mean(pred == truth))
    np.testing.assert_array_equal(c.tp + c.fp + c.fn + c.tn, [32 * 32] * 3)


def test_empty_prediction_and_truth_score_one():
    zeros = np.zeros((4, 4), dtype=np.uint8)
    c = confusion_counts(zeros, zeros, 2)
    np.testing.assert_array_equal(c.absent, [False, True])
    np.testing.assert_array_equal(c.dice(), [1.0, 1.0])
    np.testing.assert_array_equal(c.iou(), [1.0, 1.0])
    np.testing.assert_array_equal(c.precision(), [1.0, 1.0])
    np.testing.assert_array_equal(c.recall(), [1.0, 1.0])


def test_class_in_one_map_only_scores_zero():
    truth = np.zeros((4, 4), dtype=np.uint8)
    pred = truth.copy()
    pred[0, 0] = 1  # one false-positive pixel
    c = confusion_counts(pred, truth, 2)
    assert c.dice()[1] == 0.0 and c.iou()[1] == 0.0
    assert c.precision()[1] == 0.0
    assert c.recall()[1] == 0.0  # denominator 0, but the class is not absent from both
    missed = confusion_counts(truth, pred, 2)
    assert missed.precision()[1] == 0.0 and missed.recall()[1] == 0.0


def test_all_foreground_and_one_pixel():
    ones = np.ones((3, 3), dtype=np.uint8)
    c = confusion_counts(ones, ones, 2)
    np.testing.assert_array_equal(c.dice(), [1.0, 1.0])  # class 0 absent from both
    np.testing.assert_array_equal(c.tp, [0, 9])
    one = np.zeros((3, 3), dtype=np.uint8)
    one[1, 1] = 1
    c = confusion_counts(one, one, 2)
    np.testing.assert_array_equal(c.tp, [8, 1])
    np.testing.assert_array_equal(c.dice(), [1.0, 1.0])


def test_ignore_mask_and_ignore_value_leave_pixels_out():
    truth = np.array([[1, 1], [0, 0]])
    pred = np.array([[1, 0], [1, 0]])
    mask = np.array([[False, True], [True, False]])  # hide both errors
    c = confusion_counts(pred, truth, 2, ignore=mask)
    np.testing.assert_array_equal(c.tp, [1, 1])
    np.testing.assert_array_equal(c.fp + c.fn, [0, 0])
    np.testing.assert_array_equal(c.dice(), [1.0, 1.0])
    labelled = np.array([[1, -1], [-1, 0]], dtype=np.int16)
    by_value = confusion_counts(pred, labelled, 2, ignore=-1)
    np.testing.assert_array_equal(by_value.tp, c.tp)
    np.testing.assert_array_equal(by_value.tn, c.tn)


def test_counts_pool_by_addition():
    a = confusion_counts(np.array([1, 0]), np.array([1, 1]), 2)
    b = confusion_counts(np.array([0, 0]), np.array([0, 0]), 2)
    pooled = a + b
    np.testing.assert_array_equal(pooled.tp, [2, 1])
    assert isinstance(pooled, ConfusionCounts)
    assert (ConfusionCounts.zeros(2) + a).fn.tolist() == a.fn.tolist()


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(InputError, match=r"\(4, 5\).*\(4, 4\)"):
        confusion_counts(np.zeros((4, 5), int), np.zeros((4, 4), int), 2)
    with pytest.raises(InputError, match=r"\(2, 4, 5\).*\(2, 4, 4\)"):
        segmentation_report(np.zeros((2, 4, 5), int), np.zeros((2, 4, 4), int), 2)


def test_class_values_out_of_range_are_rejected():
    with pytest.raises(InputError, match="prediction has class value 2"):
        confusion_counts(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(InputError, match="truth has class value -1"):
        confusion_counts(np.array([0, 1]), np.array([0, -1]), 2)
    with pytest.raises(InputError, match="integer"):
        confusion_counts(np.array([0.0, 1.0]), np.array([0, 1]), 2)


# ---------------------------------------------------------------- segmentation report


def _two_slice_stack():
    """Slice 0: big object found exactly; slice 1: a 1-pixel object missed."""
    truth = np.zeros((2, 8, 8), dtype=np.uint8)
    truth[0, :4] = 1
    truth[1, 0, 0] = 1
    pred = truth.copy()
    pred[1, 0, 0] = 0
    return pred, truth


def test_per_slice_mean_and_pooled_differ_as_expected():
    pred, truth = _two_slice_stack()
    r = segmentation_report(pred, truth, 2, class_names=["bg", "fg"])
    assert [s.index for s in r.slices] == [0, 1]
    assert r.slices[0].dice["fg"] == 1.0 and r.slices[1].dice["fg"] == 0.0
    assert r.mean_dice["fg"] == 0.5
    assert r.mean_iou["fg"] == 0.5
    # pooled: TP 32, FP 0, FN 1
    assert r.stack_dice["fg"] == pytest.approx(64 / 65)
    assert r.stack_iou["fg"] == pytest.approx(32 / 33)
    assert r.precision["fg"] == 1.0
    assert r.recall["fg"] == pytest.approx(32 / 33)
    assert r.pixel_accuracy == pytest.approx(127 / 128)
    assert r.absent_slices == {"bg": 0, "fg": 0}


def test_report_counts_slices_where_a_class_is_absent():
    truth = np.zeros((3, 4, 4), dtype=np.uint8)
    truth[0, 0, 0] = 1
    pred = truth.copy()
    pred[0, 0, 0] = 0
    r = segmentation_report(pred, truth, 2, class_names=["bg", "fg"])
    assert r.absent_slices == {"bg": 0, "fg": 2}
    assert [s.absent for s in r.slices] == [(), ("fg",), ("fg",)]
    assert r.mean_dice["fg"] == pytest.approx(2 / 3)  # 0, 1, 1
    assert r.stack_dice["fg"] == 0.0
    assert "fg in 2" in r.format_table()


def test_report_slices_selection_and_2d_input():
    pred, truth = _two_slice_stack()
    only_first = segmentation_report(pred, truth, 2, slices=[0])
    assert [s.index for s in only_first.slices] == [0]
    assert only_first.stack_dice["class 1"] == 1.0
    flat = segmentation_report(pred[1], truth[1], 2)
    assert [s.index for s in flat.slices] == [0]
    assert flat.stack_dice["class 1"] == 0.0
    with pytest.raises(InputError, match="slice 5"):
        segmentation_report(pred, truth, 2, slices=[5])
    with pytest.raises(InputError, match="class names"):
        segmentation_report(pred, truth, 2, class_names=["a"])


def test_report_ignore_value_for_unlabelled_pixels():
    pred, truth = _two_slice_stack()
    partial = truth.astype(np.int16)
    partial[1] = -1  # slice 1 not annotated
    r = segmentation_report(pred, partial, 2, ignore=-1)
    assert r.stack_dice["class 1"] == 1.0
    assert r.absent_slices["class 1"] == 1  # nothing counted in slice 1


def test_report_to_dict_is_json_ready_and_table_has_rows():
    pred, truth = _two_slice_stack()
    r = segmentation_report(pred, truth, 2, class_names=["bg", "fg"])
    d = json.loads(json.dumps(r.to_dict()))
    assert d["pooled"]["dice"]["fg"] == pytest.approx(64 / 65)
    assert d["mean_over_slices"]["dice"]["fg"] == 0.5
    assert d["per_slice"][1] == {
        "slice": 1,
        "dice": {"bg": pytest.approx(126 / 127), "fg": 0.0},
        "iou": {"bg": pytest.approx(63 / 64), "fg": 0.0},
        "absent": [],
    }
    assert d["counts"]["fn"]["fg"] == 1
    lines = r.format_table().splitlines()
    assert lines[0].split() == ["slice", "bg", "Dice", "bg", "IoU", "fg", "Dice", "fg", "IoU"]
    assert lines[1].split()[0] == "0" and lines[2].split()[0] == "1"
    assert lines[3].split()[0] == "mean" and lines[3].split()[3] == "0.5000"
    assert lines[4].split()[0] == "pooled"
    assert lines[4].split()[3] == f"{64 / 65:.4f}"


# ---------------------------------------------------------------- EM metrics


def _membrane_map():
    """Four cells separated by a one-pixel cross of membrane (class 1), plus a border."""
    m = np.zeros((16, 16), dtype=np.uint8)
    m[8, :] = 1
    m[:, 8] = 1
    m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = 1
    return m


def test_pixel_error_definition():
    truth = _membrane_map()
    assert pixel_error(truth, truth) == 0.0
    corrupted = truth.copy()
    corrupted[8, 2:6] = 0
    assert pixel_error(corrupted, truth) == pytest.approx(4 / 256)
    # Only the binary foreground map matters: swapping two other classes is no error.
    three = np.where(truth == 1, 1, 2)
    assert pixel_error(np.where(three == 2, 0, three), three) == 0.0
    with pytest.raises(InputError):
        pixel_error(truth, truth[:-1])


def test_adapted_rand_error_perfect_and_worse():
    truth = _membrane_map()
    assert adapted_rand_error(truth, truth) == pytest.approx(0.0)
    merged = truth.copy()
    merged[8, 1:8] = 0  # a gap joins the two left cells
    merged_error = adapted_rand_error(merged, truth)
    assert merged_error > 0.1
    thick = truth.copy()
    thick[7, :] = 1  # thicker membrane: cells lose a row of pixels, no merge
    assert 0 < adapted_rand_error(thick, truth) < merged_error
    all_membrane = np.ones_like(truth)
    assert adapted_rand_error(all_membrane, truth) == pytest.approx(1.0)


def test_adapted_rand_error_one_pixel_diagonal_membrane_separates_cells():
    idx = np.arange(16)
    pred = np.zeros((16, 16), dtype=np.uint8)
    pred[idx, idx] = 1  # thin diagonal: only 4-connectivity keeps the two sides apart
    truth = pred.copy()
    truth[idx[:-1], idx[:-1] + 1] = 1  # the same cut, drawn thicker in the truth
    assert adapted_rand_error(pred, truth) == pytest.approx(0.0)


def test_adapted_rand_error_stack_is_mean_over_slices():
    truth = np.stack([_membrane_map()] * 2)
    pred = truth.copy()
    pred[1, 8, 1:8] = 0
    single = adapted_rand_error(pred[1], truth[1])
    assert adapted_rand_error(pred, truth) == pytest.approx(single / 2)
    with pytest.raises(InputError, match="undefined"):
        adapted_rand_error(np.ones((4, 4)), np.ones((4, 4)))


def test_variation_of_information_splits_and_merges():
    truth = _membrane_map()
    perfect = variation_of_information(truth, truth)
    assert (perfect.split, perfect.merge) == pytest.approx((0.0, 0.0))
    merged = truth.copy()
    merged[8, 1:8] = 0  # a gap joins cells of 49 and 42 px (of 169 counted)
    vi = variation_of_information(merged, truth)
    p = np.array([49, 42]) / 91
    expected = 91 / 169 * float(-(p * np.log2(p)).sum())  # H(truth | merged cell), in bits
    assert vi.split == pytest.approx(0.0)
    assert vi.merge == pytest.approx(expected)
    assert vi.total == pytest.approx(expected)
    thick = truth.copy()
    thick[7, :] = 1  # predicted membrane inside cells: each such pixel is its own segment
    vi = variation_of_information(thick, truth)
    assert vi.split > 0 and vi.merge == pytest.approx(0.0)


def test_variation_of_information_stack_is_mean_over_slices():
    truth = np.stack([_membrane_map()] * 2)
    pred = truth.copy()
    pred[1, 8, 1:8] = 0
    single = variation_of_information(pred[1], truth[1]).merge
    assert variation_of_information(pred, truth).merge == pytest.approx(single / 2)
    with pytest.raises(InputError, match="undefined"):
        variation_of_information(np.ones((4, 4)), np.ones((4, 4)))
    with pytest.raises(InputError, match="does not match"):
        variation_of_information(truth[0], truth[0, :-1])


# ---------------------------------------------------------------- objects


def _objects_2_of_3():
    """3 true objects, 4 predicted: 2 good matches, 1 overlap below 0.5, 1 spurious."""
    truth = np.zeros((20, 40), dtype=np.uint16)
    truth[2:8, 2:8] = 1
    truth[2:8, 12:18] = 2
    truth[12:18, 2:8] = 3
    pred = np.zeros_like(truth)
    pred[2:8, 2:8] = 7  # exact: IoU 1
    pred[2:8, 13:18] = 3  # IoU 30/36
    pred[12:18, 5:11] = 5  # 18 overlap / 54 union = 1/3
    pred[12:18, 30:36] = 9  # nothing there
    return pred, truth


def test_object_metrics_two_of_three_matched():
    pred, truth = _objects_2_of_3()
    s = object_metrics(pred, truth)
    assert (s.tp, s.fp, s.fn) == (2, 2, 1)
    assert s.precision == pytest.approx(2 / 4)
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(4 / 7)
    assert s.average_precision == pytest.approx(2 / 5)
    low = object_metrics(pred, truth, iou_threshold=0.3)
    assert (low.tp, low.fp, low.fn) == (3, 1, 0)
    assert low.average_precision == pytest.approx(3 / 4)
    assert json.loads(json.dumps(s.to_dict()))["tp"] == 2


def test_match_instances_pairs_and_ious():
    pred, truth = _objects_2_of_3()
    m = match_instances(pred, truth)
    pairs = sorted(zip(m.pred_ids.tolist(), m.truth_ids.tolist(), m.ious.tolist(), strict=True))
    assert pairs == [(3, 2, pytest.approx(30 / 36)), (7, 1, 1.0)]
    assert (m.n_pred, m.n_truth) == (4, 3)


def test_low_threshold_matching_is_optimal_not_greedy():
    truth = np.zeros((1, 20), dtype=np.int32)
    truth[0, 0:10] = 1
    truth[0, 10:20] = 2
    pred = np.zeros_like(truth)
    pred[0, 0:3] = 1  # IoU with 1: 3/10
    pred[0, 3:15] = 2  # IoU with 1: 7/15 (the best pair), with 2: 5/17
    m = match_instances(pred, truth, iou_threshold=0.25)
    # Greedy would take (2, 1) and stop at one match; the optimum matches both.
    assert sorted(zip(m.pred_ids.tolist(), m.truth_ids.tolist(), strict=True)) == [(1, 1), (2, 2)]


def test_object_metrics_empty_cases():
    empty = np.zeros((8, 8), dtype=np.int32)
    one = empty.copy()
    one[2:4, 2:4] = 1
    both_empty = object_metrics(empty, empty)
    assert (
        both_empty.precision,
        both_empty.recall,
        both_empty.f1,
        both_empty.average_precision,
    ) == (1.0, 1.0, 1.0, 1.0)
    for pred, truth in ((one, empty), (empty, one)):
        s = object_metrics(pred, truth)
        assert (s.precision, s.recall, s.f1, s.average_precision) == (0.0, 0.0, 0.0, 0.0)
    single = object_metrics(one, one)
    assert (single.tp, single.average_precision) == (1, 1.0)


def test_object_metrics_pool_slices_of_a_stack():
    pred2d, truth2d = _objects_2_of_3()
    pred = np.stack([pred2d, truth2d, np.zeros_like(truth2d)])
    truth = np.stack([truth2d, truth2d, np.zeros_like(truth2d)])
    s = object_metrics(pred, truth)
    assert (s.tp, s.fp, s.fn) == (5, 2, 1)
    assert s.average_precision == pytest.approx(5 / 8)


def test_object_metrics_input_errors():
    a = np.zeros((4, 4), dtype=np.int32)
    with pytest.raises(InputError, match=r"\(4, 4\).*\(4, 5\)"):
        object_metrics(a, np.zeros((4, 5), dtype=np.int32))
    with pytest.raises(InputError, match="threshold"):
        object_metrics(a, a, iou_threshold=0.0)

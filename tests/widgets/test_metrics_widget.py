"""Dice / IoU widget: tables, live updates, rounds, ground-truth mapping, CSV, bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from _loop_setup import SEG, SHAPE, loop_viewer, tiny_model
from qtpy.QtCore import Qt

from napari_unet_loop.app.session import session_for
from napari_unet_loop.core.model.modelfile import new_model
from napari_unet_loop.widgets.metrics_widget import MetricsWidget


def _widget(viewer, wait, truth="em truth") -> MetricsWidget:
    widget = MetricsWidget(viewer)
    widget.pred_combo.setCurrentText(SEG)
    widget.truth_combo.setCurrentText(truth)
    wait(widget)
    return widget


@pytest.fixture
def viewer(make_napari_viewer):
    """The segmentation equals the truth except slice 1, which is all background."""
    viewer = loop_viewer(make_napari_viewer)
    truth = viewer.layers["em truth"].data
    seg = truth.copy()
    seg[1] = 0
    viewer.layers[SEG].data = seg
    return viewer


def test_per_slice_table_mean_first_and_status(viewer, wait_idle):
    widget = _widget(viewer, wait_idle)
    table = widget.table
    assert table.rowCount() == 4 and table.columnCount() == 6
    assert table.horizontalHeaderItem(3).text() == "Dice\nmembrane"
    # the mean on top, in bold: in view however many slices follow
    assert [table.item(r, 0).text() for r in range(4)] == ["mean", "0", "1", "2"]
    assert table.item(0, 0).font().bold() and not table.item(1, 0).font().bold()
    assert table.item(1, 3).text() == "1.0000" and table.item(2, 3).text() == "0.0000"
    assert float(table.item(0, 3).text()) == pytest.approx(2 / 3, abs=1e-4)
    assert widget.status.text().startswith("Mean Dice over 3 unedited slice(s)")
    assert widget.history_table.rowCount() == 1
    assert widget.history_table.item(0, 0).text() == "tiny"


def test_headers_are_never_cut_off(viewer, wait_idle):
    widget = _widget(viewer, wait_idle)
    widget.resize(300, 400)  # a narrow dock
    widget.show()
    for table in (widget.table, widget.history_table):
        header = table.horizontalHeader()
        metrics = header.fontMetrics()
        for column in range(table.columnCount()):
            text = table.horizontalHeaderItem(column).text()
            widest = max(metrics.horizontalAdvance(line) for line in text.splitlines())
            assert header.sectionSize(column) > widest, text
            assert header.height() >= metrics.height() * len(text.splitlines()), text


def test_opening_chooses_the_segmentation_and_a_truth_and_scores_the_current_model(
    viewer, wait_idle
):
    session_for(viewer).push_model(tiny_model(), "retrain 1: slice 1 (dense)")
    widget = MetricsWidget(viewer)  # opened after a retrain, nothing chosen by hand
    wait_idle(widget)
    assert widget.pred_combo.currentText() == SEG
    assert widget.truth_combo.currentText() == "em truth"
    assert widget.history_table.rowCount() == 1
    assert widget.history_table.item(0, 0).text() == "retrain 1: slice 1 (dense)"


def test_a_new_segmentation_becomes_the_prediction_beside_the_ground_truth(
    make_napari_viewer, wait_idle
):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 32, 32), np.uint8), name="em")
    viewer.add_labels(np.zeros((2, 32, 32), np.uint8), name="em ground truth")
    widget = MetricsWidget(viewer)  # opened before segmenting: only the truth is there
    viewer.add_labels(
        np.zeros((2, 32, 32), np.uint8),
        name="em segmentation",
        metadata={"unet_loop": {"image_layer": "em"}},
    )
    assert widget.pred_combo.currentText() == "em segmentation"
    assert widget.truth_combo.currentText() == "em ground truth"
    viewer.add_labels(np.zeros((2, 32, 32), np.uint8), name="other")
    assert widget.pred_combo.currentText() == "em segmentation"  # a usable choice is kept
    assert widget.truth_combo.currentText() == "em ground truth"
    wait_idle(widget)


def test_editing_the_prediction_updates_the_table_and_skips_edited_slices(viewer, wait_idle, qtbot):
    widget = _widget(viewer, wait_idle)
    seg = viewer.layers[SEG]
    seg.paint((0, 30, 30), 1)  # an edit: slice 0 now counts as edited
    qtbot.waitUntil(lambda: widget.table.item(1, 1).text() == "yes", timeout=3000)
    assert widget.table.item(0, 1).text() == "2 slices"
    assert float(widget.table.item(0, 3).text()) == pytest.approx(0.5, abs=1e-4)


def test_each_model_version_gets_a_history_row(viewer, wait_idle, qtbot):
    widget = _widget(viewer, wait_idle)
    session_for(viewer).push_model(tiny_model(), "retrain 1: slices 1 (dense)")
    qtbot.waitUntil(lambda: widget.history_table.rowCount() == 2, timeout=3000)
    assert widget.history_table.item(1, 0).text() == "retrain 1: slices 1 (dense)"
    assert widget.history_table.horizontalHeaderItem(2).text() == "mean Dice\nmembrane"


def test_isbi_style_image_ground_truth_with_invert(viewer, wait_idle, qtbot):
    truth = viewer.layers["em truth"].data
    viewer.add_image(np.where(truth == 1, 0, 255).astype(np.uint8), name="isbi")
    widget = _widget(viewer, wait_idle, truth="isbi")
    assert float(widget.table.item(1, 3).text()) == 0.0
    assert "0→0, 255→1" in widget.status.text()
    widget.invert_check.setChecked(True)
    qtbot.waitUntil(lambda: "inverted" in widget.status.text(), timeout=3000)
    assert widget.table.item(1, 3).text() == "1.0000"


def test_instance_labels_add_object_f1(viewer, wait_idle, qtbot):
    from napari_unet_loop.core.synthetic import make_nuclei_stack

    _, instances = make_nuclei_stack((3, 64, 64), seed=1)
    viewer.layers[SEG].data = (instances > 0).astype(np.uint8)
    viewer.add_labels(instances, name="nuclei")
    widget = _widget(viewer, wait_idle, truth="nuclei")
    widget.instances_check.setChecked(True)
    qtbot.waitUntil(lambda: widget.table.columnCount() == 7, timeout=3000)
    assert widget.table.horizontalHeaderItem(6).text() == "object\nF1"
    assert float(widget.table.item(0, 6).text()) > 0.5


def test_csv_export(viewer, wait_idle, tmp_path, qtbot):
    widget = _widget(viewer, wait_idle)
    widget.csv_edit.setText(str(tmp_path / "metrics.csv"))
    qtbot.mouseClick(widget.export_button, Qt.MouseButton.LeftButton)
    rows = list(csv.reader((tmp_path / "metrics.csv").open()))
    assert rows[0][:4] == ["slice", "edited", "Dice background", "Dice membrane"]
    assert rows[4][0] == "mean" and rows[5] == []
    assert rows[6][0] == "model version" and rows[7][0] == "tiny"
    widget.csv_edit.setText(str(tmp_path / "missing" / "m.csv"))
    widget.export_csv()
    assert widget.status.text().startswith("Could not export")


def test_shape_mismatch_and_missing_truth_are_messages(viewer, wait_idle):
    viewer.add_labels(np.zeros((2, 64, 64), np.uint8), name="short")
    widget = _widget(viewer, wait_idle, truth="short")
    assert "differ in shape" in widget.status.text() and widget.table.rowCount() == 0
    widget.export_csv()
    assert "Nothing to export" in widget.status.text()
    for name in ("short", "em truth", "em"):
        viewer.layers.remove(name)
    widget.recompute()
    assert widget.status.text().startswith("Choose a prediction")


def test_unmappable_ground_truth_is_a_message(viewer, wait_idle):
    viewer.add_image(np.arange(3 * 64 * 64, dtype=np.float32).reshape(3, 64, 64) - 5, name="ramp")
    session_for(viewer).push_model(new_model(["a", "b", "c"], depth=2, base_channels=4), "three")
    viewer.layers[SEG].metadata["unet_loop"]["classes"] = ["a", "b", "c"]
    widget = _widget(viewer, wait_idle, truth="ramp")
    assert "expected class indices 0..2" in widget.status.text()


def test_repeated_resegments_leave_no_metrics_workers_or_copies(
    viewer, wait_idle, qtbot, monkeypatch
):
    """Walkthrough defect 1: each re-segment used to leave ~30 finished workers holding copies."""
    import gc
    import threading

    from superqt.utils import FunctionWorker, WorkerBase

    from napari_unet_loop.app import evaluation
    from napari_unet_loop.widgets.retrain_widget import RetrainWidget

    lock, in_flight, peak = threading.Lock(), [0], [0]
    evaluate = evaluation.evaluate

    def counted(*args, **kwargs):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            return evaluate(*args, **kwargs)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(evaluation, "evaluate", counted)
    metrics = _widget(viewer, wait_idle)
    retrain = RetrainWidget(viewer)
    retrain.labels_combo.setCurrentText(SEG)
    alive = []
    for _ in range(3):
        session_for(viewer).push_model(tiny_model(), "tiny")  # new weights: every slice changes
        qtbot.mouseClick(retrain.resegment_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not retrain.running, timeout=30_000)
        wait_idle(metrics)
        gc.collect()
        workers = [w for w in gc.get_objects() if isinstance(w, WorkerBase)]
        alive.append(sum(isinstance(w, FunctionWorker) for w in workers))  # metrics' kind
        held = [w.__dict__ for w in workers]
        for _ in range(2):  # the worker's attributes and the containers in them
            held = [x for x in gc.get_referents(*held) if not isinstance(x, WorkerBase)]
        stacks = [a for a in held if isinstance(a, np.ndarray) and a.shape == SHAPE]
        assert not stacks, "a finished worker keeps a copy of the stack"
    assert alive == [0, 0, 0]
    assert peak[0] == 1


def test_ground_truth_opened_later_is_chosen_and_inverted_classes_get_a_swap_button(
    make_napari_viewer, wait_idle, qtbot
):
    """Walkthrough defect 2: the truth stayed on the raw image; swapped classes went unnoticed."""
    from _loop_setup import CLASSES

    from napari_unet_loop.core.synthetic import make_membrane_stack

    viewer = make_napari_viewer()
    image, truth = make_membrane_stack(SHAPE, seed=0)
    viewer.add_image(image, name="em")
    viewer.add_labels(truth, name=SEG, metadata={"unet_loop": {"classes": CLASSES}})
    session_for(viewer).push_model(tiny_model(), "tiny")
    widget = MetricsWidget(viewer)
    assert widget.truth_combo.currentText() == "em"  # nothing better yet
    wait_idle(widget)
    assert widget.swap_button.isHidden()
    viewer.add_labels(np.zeros(SHAPE, np.uint8), name="Labels")  # empty, to paint in: no truth
    viewer.add_image(np.zeros((2, 64, 64), np.uint8) + 255 * (truth[:2] == 0), name="other")
    assert widget.truth_combo.currentText() == "em"
    viewer.add_image(np.where(truth == 1, 0, 255).astype(np.uint8), name="train-labels")
    assert widget.truth_combo.currentText() == "train-labels"
    qtbot.waitUntil(lambda: not widget.swap_button.isHidden(), timeout=10_000)
    assert widget.swap_hint.text().startswith("Classes look swapped: ticking 'swap classes'")
    qtbot.mouseClick(widget.swap_button, Qt.MouseButton.LeftButton)
    assert widget.invert_check.isChecked()
    qtbot.waitUntil(lambda: widget.swap_button.isHidden(), timeout=10_000)
    wait_idle(widget)
    assert widget.evaluation.mean_dice["membrane"] == pytest.approx(1.0)


def test_history_rows_follow_the_ground_truth_and_class_names(viewer, wait_idle, qtbot):
    """Walkthrough defect 3: rows of another truth or model stayed under the wrong headers."""
    widget = _widget(viewer, wait_idle)
    assert widget.history_table.item(0, 0).text() == "tiny"
    viewer.add_labels(viewer.layers["em truth"].data.copy(), name="second truth")
    qtbot.waitUntil(lambda: widget.truth_combo.currentText() == "second truth", timeout=3000)
    session_for(viewer).push_model(tiny_model(), "retrain 1")
    qtbot.waitUntil(
        lambda: (
            widget.history_table.rowCount() == 1
            and widget.history_table.item(0, 0).text() == "retrain 1"
        ),
        timeout=10_000,
    )
    nuclei = new_model(["background", "nucleus"], depth=2, base_channels=4, name="nuclei")
    viewer.layers[SEG].metadata["unet_loop"]["classes"] = ["background", "nucleus"]
    session_for(viewer).push_model(nuclei, "nuclei")
    qtbot.waitUntil(lambda: widget.history_table.item(0, 0).text() == "nuclei", timeout=10_000)
    wait_idle(widget)
    assert widget.history_table.rowCount() == 1
    assert widget.history_table.horizontalHeaderItem(2).text() == "mean Dice\nnucleus"
    widget.truth_combo.setCurrentText("em truth")  # scored before, but with other classes
    qtbot.waitUntil(lambda: widget.status.text().count("nucleus"), timeout=10_000)
    wait_idle(widget)
    rows = widget.history_table.rowCount()
    assert [widget.history_table.item(r, 0).text() for r in range(rows)] == ["nuclei"]


def test_closing_the_dice_dock_keeps_the_scores_of_every_version(viewer, wait_idle, qtbot):
    widget = _widget(viewer, wait_idle)
    session_for(viewer).push_model(tiny_model(), "retrain 1")
    qtbot.waitUntil(lambda: widget.history_table.rowCount() == 2, timeout=10_000)
    wait_idle(widget)
    with qtbot.waitSignal(widget.destroyed):
        widget.deleteLater()
    reopened = _widget(viewer, wait_idle)
    rows = reopened.history_table.rowCount()
    assert [reopened.history_table.item(r, 0).text() for r in range(rows)] == ["tiny", "retrain 1"]


def test_while_a_job_runs_the_scores_wait_for_its_end(viewer, wait_idle, qtbot):
    from napari_unet_loop.app.activity import job_ended, job_started

    widget = _widget(viewer, wait_idle)
    before = widget.evaluation
    job_started()
    try:
        viewer.layers[SEG].paint((0, 30, 30), 1)
        qtbot.wait(1200)  # four times the delay: no new scores while the job runs
        assert widget.evaluation is before
    finally:
        job_ended()
    qtbot.waitUntil(lambda: widget.evaluation is not before, timeout=5000)

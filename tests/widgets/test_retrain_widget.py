"""Correct and Retrain widget: the whole loop, sparse mode, Stop, history, saving, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from _loop_setup import CLASSES, SEG, SHAPE, correct_slice, loop_viewer, sure_prediction, tiny_model
from _loop_setup import retrain_widget as _widget
from qtpy.QtCore import Qt

from napari_unet_loop.app.session import session_for
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.model.modelfile import load_model
from napari_unet_loop.core.training import train as training
from napari_unet_loop.core.training.train import IGNORE_INDEX
from napari_unet_loop.widgets._edits import track_edits
from napari_unet_loop.widgets.metrics_widget import MetricsWidget


def test_the_whole_loop_improves_the_held_out_slice(make_napari_viewer, qtbot, wait_idle):
    image_model = tiny_model()
    viewer = loop_viewer(make_napari_viewer)
    seg, truth = viewer.layers[SEG], viewer.layers["em truth"].data
    seg.data = predict(viewer.layers["em"].data, image_model).labels  # before tracking: no edit
    metrics = MetricsWidget(viewer)
    metrics.pred_combo.setCurrentText(SEG)
    metrics.truth_combo.setCurrentText("em truth")
    wait_idle(metrics)
    before = metrics.evaluation.mean_dice["membrane"]

    widget = _widget(viewer, margin=0.01)
    correct_slice(seg, 0, truth)
    correct_slice(seg, 1, truth)
    assert widget.edited_label.text() == "Edited slices: 0, 1"
    qtbot.mouseClick(widget.retrain_button, Qt.MouseButton.LeftButton)
    assert widget.running and widget.stop_button.isEnabled()
    wait_idle(widget, 90_000)
    assert widget.status.text().startswith("New model: retrain 1"), widget.status.text()
    session = session_for(viewer)
    assert [v.label for v in session.versions] == ["tiny", "retrain 1: slices 0, 1 (dense)"]
    history = widget.models.history
    assert history.count() == 2 and history.item(1).text().startswith("●")
    np.testing.assert_array_equal(seg.data[0], truth[0])  # current slice is edited: kept

    widget.resegment_unedited()
    wait_idle(widget)
    assert widget.status.text() == "Re-segmented slice 2."
    np.testing.assert_array_equal(seg.data[:2], truth[:2])
    qtbot.waitUntil(lambda: metrics.history_table.rowCount() == 2, timeout=5000)
    after = float(metrics.history_table.item(1, 2).text())
    assert metrics.history_table.item(0, 0).text() == "tiny"
    assert metrics.evaluation.scored == [2]
    assert after > before + 0.3, (before, after)


def test_sparse_mode_trains_on_painted_pixels_only(make_napari_viewer, fake_train, wait_idle):
    viewer = loop_viewer(make_napari_viewer)
    seg = viewer.layers[SEG]
    widget = _widget(viewer)
    seg.brush_size = 5
    seg.paint((1, 30, 30), 1)
    widget.mode_combo.setCurrentText("sparse")
    widget.retrain()
    wait_idle(widget)
    (labels,) = fake_train[0]["labels"]
    painted = seg.data[1] == 1
    trained_on = labels != IGNORE_INDEX  # painted pixels, less any held back to check the round
    assert trained_on.any() and painted[trained_on].all() and (labels[trained_on] == 1).all()
    assert fake_train[0]["config"].iterations == 30
    assert session_for(viewer).versions[-1].label == "retrain 1: slice 1 (sparse)"


def test_corrections_in_another_segmentation_are_listed_and_join_the_round(
    make_napari_viewer, fake_train, wait_idle
):
    viewer = loop_viewer(make_napari_viewer)
    truth = viewer.layers["em truth"].data
    viewer.add_image(viewer.layers["em"].data[::-1].copy(), name="em2")
    meta = {"image_layer": "em2", "model": "tiny", "classes": list(CLASSES)}
    other = viewer.add_labels(
        np.zeros(SHAPE, np.uint8), name="em2 segmentation", metadata={"unet_loop": meta}
    )
    widget = _widget(viewer)
    track_edits(other, session_for(viewer))
    correct_slice(viewer.layers[SEG], 0, truth)
    correct_slice(other, 1, truth[::-1])
    assert widget.edited_label.text() == "Edited slices: 0; also corrected: em2 segmentation"
    widget.retrain()
    wait_idle(widget)
    assert len(fake_train[0]["labels"]) == 2  # slice 0 here, slice 1 of em2
    label = session_for(viewer).versions[-1].label
    assert label == "retrain 1: slice 0 + em2 segmentation (dense)"


def test_held_back_dice_stays_on_show_and_the_round_is_summed_up(
    make_napari_viewer, fake_train, wait_idle, monkeypatch
):
    from napari_unet_loop.app.progress_text import Throttle

    # every status line, not the few a second the viewer shows (the fake round takes no time)
    monkeypatch.setattr(
        "napari_unet_loop.widgets.retrain_widget.Throttle", lambda: Throttle(per_second=1e9)
    )
    viewer = loop_viewer(make_napari_viewer)
    widget = _widget(viewer)
    said = []
    monkeypatch.setattr(widget, "_say", said.append)
    correct_slice(viewer.layers[SEG], 1, viewer.layers["em truth"].data)
    widget.retrain()
    wait_idle(widget)
    assert fake_train[0]["val_images"]  # a band of the corrections is held back
    assert len(fake_train[0]["images"]) == 1  # the corrected slice
    assert any("held-back Dice 0.250" in s and "~4 s left" in s for s in said), said
    # the next iteration measures no Dice: the last one stays on show
    assert "Iteration 2/3 · loss 0.4500 · held-back Dice 0.250 · ~2 s left" in said, said
    assert said[-1].startswith("New model: retrain 1 (3 iterations"), said
    assert "on held-back corrections vs" in said[-1]
    assert said[-1].endswith("Slice 1 is corrected: kept as painted."), said


def test_a_round_that_does_not_beat_the_current_model_is_listed_but_not_used(
    make_napari_viewer, fake_train, wait_idle
):
    viewer = loop_viewer(make_napari_viewer)
    widget = _widget(viewer, margin=0.5)  # the fake round cannot gain that much
    correct_slice(viewer.layers[SEG], 1, viewer.layers["em truth"].data)
    widget.retrain()
    wait_idle(widget)
    session = session_for(viewer)
    labels = [v.label for v in session.versions]
    assert labels == ["tiny", "retrain 1: slice 1 (dense), not adopted"]
    assert session.current_index == 0
    assert "kept the previous model" in widget.status.text()
    assert widget.models.history.item(0).text().startswith("●")


def test_stop_discards_the_run(make_napari_viewer, qtbot, wait_idle):
    viewer = loop_viewer(make_napari_viewer)
    widget = _widget(viewer, iterations=10_000)
    correct_slice(viewer.layers[SEG], 0, viewer.layers["em truth"].data)
    widget.retrain()
    qtbot.waitUntil(lambda: widget.status.text().startswith("Iteration"), timeout=60_000)
    widget.stop()
    wait_idle(widget)
    assert widget.status.text() == "Stopped: the model is unchanged."
    assert len(session_for(viewer).versions) == 1
    assert widget.retrain_button.isEnabled() and not widget.stop_button.isEnabled()


def test_step_back_in_history_and_save_the_model(
    make_napari_viewer, fake_train, wait_idle, tmp_path
):
    viewer = loop_viewer(make_napari_viewer)
    widget = _widget(viewer)
    correct_slice(viewer.layers[SEG], 0, viewer.layers["em truth"].data)
    for _ in range(2):
        widget.retrain()
        wait_idle(widget)
    session = session_for(viewer)
    assert [v.label.split(":")[0] for v in session.versions] == ["tiny", "retrain 1", "retrain 2"]
    models = widget.models
    models.use_selected()
    assert "Select a model version" in widget.status.text()
    models.history.setCurrentRow(1)
    models.use_selected()
    assert session.current_index == 1 and models.history.item(1).text().startswith("●")
    assert models.history.count() == 3

    models.save_edit.setText(str(tmp_path / "round1"))
    models.save()
    saved = tmp_path / "round1.safetensors"
    assert saved.is_file() and load_model(saved).class_names == ["background", "membrane"]
    (tmp_path / "file").write_text("")
    models.save_edit.setText(str(tmp_path / "file" / "model.safetensors"))
    models.save()
    assert widget.status.text().startswith("Could not save the model")


def test_save_model_as_a_bioimageio_package(make_napari_viewer, qtbot, tmp_path):
    pytest.importorskip("bioimageio.spec", reason="bioimageio.spec not installed ([bioimageio])")
    widget = _widget(loop_viewer(make_napari_viewer))
    out = tmp_path / "tiny.zip"
    widget.models.save_edit.setText(str(out))
    widget.models.save()  # in a worker: the export traces the network
    assert not widget.models.save_button.isEnabled()
    qtbot.waitUntil(widget.models.save_button.isEnabled, timeout=300_000)
    assert widget.status.text() == f"Saved a bioimage.io package to {out}"
    assert load_model(out).class_names == ["background", "membrane"]


def test_corrections_reload_in_a_new_viewer(make_napari_viewer, qtbot, tmp_path):
    viewer = loop_viewer(make_napari_viewer)
    widget = _widget(viewer)
    seg = viewer.layers[SEG]
    correct_slice(seg, 2, viewer.layers["em truth"].data)
    corrected = seg.data[2].copy()
    folder = tmp_path / "home" / ".napari-unet-loop" / "corrections"
    assert widget.autosave.edit.text().startswith(str(folder / "em-"))
    viewer.close()  # closing saves what the timer had not saved yet

    again = loop_viewer(make_napari_viewer)
    widget = _widget(again)
    assert widget.edited_label.text() == "Edited slices: 2"
    np.testing.assert_array_equal(again.layers[SEG].data[2], corrected)

    widget.autosave.edit.setText(str(tmp_path / "mine"))
    widget.autosave.use()
    assert (tmp_path / "mine" / "slice_0002.npz").is_file()
    assert "Autosaving to" in widget.status.text()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no edits", "no edited slices"),
        ("no labels", "choose a labels layer"),
        ("bad values", "only classes 0..1"),
        ("no model", "run Segment first"),
        ("image shape", "differ in shape"),
    ],
)
def test_bad_input_gives_a_message(make_napari_viewer, notes, case, message):
    viewer = loop_viewer(make_napari_viewer, model=case != "no model")
    seg = viewer.layers[SEG]
    widget = _widget(viewer)
    if case == "no labels":
        for name in (SEG, "em truth"):
            viewer.layers.remove(name)
    if case != "no edits":
        seg.data_setitem(
            (np.array([0]), np.array([5]), np.array([5])), 7 if case == "bad values" else 1
        )
    if case == "image shape":
        viewer.layers["em"].data = np.zeros((3, 32, 32), np.uint8)
    widget.retrain()
    assert message in widget.status.text() and notes["error"] == [widget.status.text()]
    assert not widget.running and widget.retrain_button.isEnabled()


def test_removing_the_layer_while_training_stops_cleanly(
    make_napari_viewer, qtbot, wait_idle, notes
):
    viewer = loop_viewer(make_napari_viewer)
    widget = _widget(viewer, iterations=10_000)
    correct_slice(viewer.layers[SEG], 0, viewer.layers["em truth"].data)
    widget.retrain()
    viewer.layers.remove(SEG)
    wait_idle(widget)
    assert widget.status.text() == f"Stopped: '{SEG}' was removed."
    assert len(session_for(viewer).versions) == 1 and notes["error"] == []


def test_closing_the_viewer_while_training_is_harmless(make_napari_viewer, qtbot, wait_idle):
    viewer = loop_viewer(make_napari_viewer)
    widget = _widget(viewer, iterations=10_000)
    correct_slice(viewer.layers[SEG], 0, viewer.layers["em truth"].data)
    session = session_for(viewer)
    widget.retrain()
    viewer.close()
    wait_idle(widget)
    assert len(session.versions) == 1


def test_after_retraining_the_current_unedited_slice_is_resegmented(
    make_napari_viewer, fake_train, wait_idle, monkeypatch
):
    from napari_unet_loop.core.inference import predict as inference

    predicted = []

    def fake_predict(image, model, **kwargs):
        predicted.append(image.shape)
        return sure_prediction(image.shape, 1)

    monkeypatch.setattr(inference, "predict", fake_predict)
    viewer = loop_viewer(make_napari_viewer)
    seg = viewer.layers[SEG]
    widget = _widget(viewer)
    correct_slice(seg, 0, viewer.layers["em truth"].data)
    viewer.dims.set_current_step(0, 2)
    widget.retrain()
    wait_idle(widget)
    assert predicted == [(64, 64)] and (seg.data[2] == 1).all()
    assert widget.status.text().endswith("). Re-segmented slice 2."), widget.status.text()
    assert not (seg.data[1] == 1).all()
    assert session_for(viewer).edited_slices(SEG) == [0]  # a re-segmented slice is no edit


def test_a_failing_run_is_reported(make_napari_viewer, wait_idle, notes, monkeypatch):
    def broken(*args, **kwargs):
        raise training.InputError("the model needs (Y, X) images")

    monkeypatch.setattr(training, "train", broken)
    viewer = loop_viewer(make_napari_viewer)
    widget = _widget(viewer)
    correct_slice(viewer.layers[SEG], 0, viewer.layers["em truth"].data)
    widget.retrain()
    wait_idle(widget)
    assert widget.status.text() == "Retrain failed: the model needs (Y, X) images"
    assert notes["error"] == ["Retrain failed: the model needs (Y, X) images"]
    assert len(session_for(viewer).versions) == 1 and widget.retrain_button.isEnabled()


def test_resegmenting_all_unedited_slices_says_when_it_starts_and_ends(
    make_napari_viewer, wait_idle, monkeypatch
):
    from napari_unet_loop.core.inference import predict as inference

    def unsure_nucleus(image, model, **kwargs):
        p = np.stack([np.full(image.shape, 0.25, np.float32), np.full(image.shape, 0.75)])
        return inference.Prediction(p, np.ones(image.shape, np.uint8))

    monkeypatch.setattr(inference, "predict", unsure_nucleus)
    viewer = loop_viewer(make_napari_viewer)
    seg = viewer.layers[SEG]
    unsure = viewer.add_image(np.zeros(seg.data.shape, np.float32), name="em uncertainty")
    widget = _widget(viewer)
    said = []
    monkeypatch.setattr(widget, "_say", said.append)
    correct_slice(seg, 0, viewer.layers["em truth"].data)
    widget.resegment_unedited()
    assert widget.running and said == ["Re-segmenting 2 slices…"]
    wait_idle(widget)
    assert said[1:] == [
        "Re-segmenting 2 slices… 1/2",
        "Re-segmenting 2 slices… 2/2",
        "Re-segmented 2 slices.",
    ]
    assert (seg.data[1:] == 1).all() and not (seg.data[0] == 1).all()
    # the uncertainty of the slices written follows the model they now come from
    entropy = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75)) / np.log(2)
    assert seg.metadata["unet_loop"]["uncertainty"] == pytest.approx({1: entropy, 2: entropy})
    assert sorted(seg.metadata["unet_loop"]["descriptors"]) == [1, 2]
    assert np.allclose(unsure.data[1:], entropy) and (unsure.data[0] == 0).all()

    correct_slice(seg, 1, viewer.layers["em truth"].data)
    correct_slice(seg, 2, viewer.layers["em truth"].data)
    widget.resegment_unedited()
    assert not widget.running and said[-1] == "Every slice is corrected: nothing to re-segment."


def test_correct_next_lists_unsure_unedited_slices_and_a_click_shows_one(make_napari_viewer, qtbot):

    viewer = loop_viewer(make_napari_viewer)
    seg = viewer.layers[SEG]
    seg.metadata["unet_loop"]["uncertainty"] = {0: 0.1, 1: 0.5, 2: 0.3}
    widget = _widget(viewer)
    items = [widget.suggestions.list.item(i).text() for i in range(widget.suggestions.list.count())]
    assert items == [
        "slice 1 (uncertainty 0.500)",
        "slice 2 (uncertainty 0.300)",
        "slice 0 (uncertainty 0.100)",
    ]
    correct_slice(seg, 1, viewer.layers["em truth"].data)  # edited slices leave the list
    assert widget.suggestions.list.item(0).text() == "slice 2 (uncertainty 0.300)"
    viewer.dims.set_current_step(0, 0)
    list_widget = widget.suggestions.list
    rect = list_widget.visualItemRect(list_widget.item(0))
    qtbot.mouseClick(list_widget.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert viewer.dims.current_step[0] == 2

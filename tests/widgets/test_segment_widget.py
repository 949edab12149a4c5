"""Segment widget: layers it writes, re-runs, corrections kept, current slice, cancel, bad input."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_unet_loop.app.session import session_for
from napari_unet_loop.core.inference import predict as inference
from napari_unet_loop.core.model.devices import available_devices
from napari_unet_loop.core.model.modelfile import new_model
from napari_unet_loop.widgets._edits import programmatic_update
from napari_unet_loop.widgets.segment_widget import CURRENT_SLICE, SegmentWidget

SEG = "cells segmentation"


@pytest.fixture
def setup(make_napari_viewer, model_file):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(rng.integers(0, 255, (3, 64, 64), dtype=np.uint8), name="cells")
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.model_picker.set_file(model_file)
    widget.device_combo.setCurrentText("cpu")
    return viewer, widget


def _segmentations(viewer):
    return [layer.name for layer in viewer.layers if layer.name.startswith(SEG)]


def test_whole_stack_makes_a_labels_layer_and_a_rerun_reuses_it(setup, wait_idle, notes):
    viewer, widget = setup
    widget.run()
    assert widget.running and not widget.run_button.isEnabled()
    assert widget.cancel_button.isEnabled()
    wait_idle(widget)
    layer = viewer.layers[SEG]
    assert layer.data.shape == (3, 64, 64) and layer.data.dtype == np.uint8
    assert set(np.unique(layer.data)) <= {0, 1}
    metadata = layer.metadata["unet_loop"]
    assert {k: metadata[k] for k in ("image_layer", "model", "classes", "scale")} == {
        "image_layer": "cells",
        "model": "tiny",
        "classes": ["background", "membrane"],
        "scale": 1.0,
    }
    # each slice's mean uncertainty, for "correct next"; and the uncertainty layer
    assert sorted(metadata["uncertainty"]) == sorted(metadata["descriptors"]) == [0, 1, 2]
    assert all(0.0 <= u <= 1.0 for u in metadata["uncertainty"].values())
    assert viewer.layers["cells uncertainty"].data.shape == (3, 64, 64)
    # napari names the class under the cursor
    assert list(layer.features["class"]) == ["background", "membrane"]
    name = ["background", "membrane"][int(layer.data[0, 0, 0])]
    assert name in layer.get_status((0, 0, 0))["coordinates"]
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()
    session = widget._session
    assert session.model.name == "tiny" and len(session.versions) == 1

    with programmatic_update(layer):  # stale content the next run must replace
        layer.data = np.full((3, 64, 64), 5, np.uint8)
    widget.run()
    wait_idle(widget)
    assert _segmentations(viewer) == [SEG] and viewer.layers[SEG] is layer
    assert set(np.unique(layer.data)) <= {0, 1}
    assert len(session.versions) == 1  # same model again: no new history entry
    assert notes["error"] == []


def test_corrections_are_never_overwritten(setup, wait_idle, notes):
    viewer, widget = setup
    widget.run()
    wait_idle(widget)
    layer = viewer.layers[SEG]
    layer.paint((1, 10, 10), 7)  # the user's brush stroke on slice 1
    assert widget._session.edited_slices(SEG) == [1]
    corrected = np.array(layer.data)

    widget.run()  # whole stack would hit slice 1: goes to a new layer
    wait_idle(widget)
    assert _segmentations(viewer) == [SEG, f"{SEG} (2)"]
    np.testing.assert_array_equal(layer.data, corrected)
    assert any("corrections" in message and "(2)" in message for message in notes["info"])

    # Current slice 0 does not touch the corrected slice, so the corrected layer is fine to use
    # once the new one carries corrections too.
    viewer.layers[f"{SEG} (2)"].paint((0, 5, 5), 7)
    viewer.dims.set_current_step(0, 0)
    widget.scope_combo.setCurrentText(CURRENT_SLICE)
    widget.run()
    wait_idle(widget)
    assert _segmentations(viewer) == [SEG, f"{SEG} (2)"]
    assert layer.data[1, 10, 10] == 7
    np.testing.assert_array_equal(layer.data[1:], corrected[1:])


def test_current_slice_replaces_only_that_slice(setup, wait_idle):
    viewer, widget = setup
    widget.run()
    wait_idle(widget)
    layer = viewer.layers[SEG]
    with programmatic_update(layer):
        layer.data = np.full((3, 64, 64), 5, np.uint8)
    viewer.dims.set_current_step(0, 2)
    widget.scope_combo.setCurrentText(CURRENT_SLICE)
    widget.run()
    wait_idle(widget)
    assert (layer.data[:2] == 5).all()
    assert set(np.unique(layer.data[2])) <= {0, 1}
    # the other slices keep what "correct next" knows of them
    metadata = layer.metadata["unet_loop"]
    assert sorted(metadata["uncertainty"]) == sorted(metadata["descriptors"]) == [0, 1, 2]


def test_uses_the_sessions_current_model_after_a_retrain(setup, wait_idle, model_file):
    viewer, widget = setup
    session = session_for(viewer)
    retrained = new_model(["background", "membrane"], depth=2, base_channels=4, name="retrained")
    session.push_model(retrained, "retrain 1")  # what Retrain does when it finishes
    assert widget.model_picker.combo.currentText() == "current: retrain 1"
    widget.run()
    wait_idle(widget)
    assert viewer.layers[SEG].metadata["unet_loop"]["model"] == "retrained"
    assert len(session.versions) == 1

    widget.model_picker.set_file(model_file)  # picking a model file again makes it current
    widget.run()
    wait_idle(widget)
    assert session.model.name == "tiny"
    assert [v.label for v in session.versions] == ["retrain 1", "loaded tiny.safetensors"]


def test_2d_and_rgb_images_give_2d_labels(setup, wait_idle, notes):
    viewer, widget = setup
    rng = np.random.default_rng(2)
    viewer.add_image(rng.integers(0, 255, (40, 48), dtype=np.uint8), name="plane")
    viewer.add_image(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8), name="smear", rgb=True)
    for name in ("plane", "smear"):
        widget.image_combo.setCurrentText(name)
        widget.run()
        wait_idle(widget)
        assert viewer.layers[f"{name} segmentation"].data.shape == (40, 48)
    assert notes["error"] == []


def test_probabilities_and_instances(setup, wait_idle, notes):
    viewer, widget = setup
    widget.instances_check.setChecked(True)
    widget.probabilities_check.setChecked(True)
    widget.run()
    wait_idle(widget)
    labels = viewer.layers[SEG].data
    assert labels.dtype == np.int32 and labels.shape == (3, 64, 64)
    assert len(viewer.layers[SEG].features) == 0  # instance ids are not classes
    ids = [set(np.unique(plane)) - {0} for plane in labels]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2])  # ids unique over the stack
    probability = viewer.layers["cells probability"].data
    assert probability.shape == (3, 64, 64) and probability.dtype == np.float32
    assert 0.0 <= probability.min() and probability.max() <= 1.0
    assert notes["error"] == []


def test_cancel_stops_and_keeps_the_previous_result(setup, wait_idle, notes, monkeypatch, qtbot):
    viewer, widget = setup
    viewer.layers["cells"].data = np.random.default_rng(1).integers(0, 255, (12, 64, 64), np.uint8)
    layer = viewer.add_labels(np.full((12, 64, 64), 5, np.uint8), name=SEG)  # a good result

    real = inference.iter_predict
    gate, seen = threading.Event(), []

    def gated(*args, **kwargs):
        for event in real(*args, **kwargs):
            yield event
            if isinstance(event, inference.Progress):
                seen.append(event)
                gate.wait(10)

    monkeypatch.setattr(inference, "iter_predict", gated)
    widget.run()
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)  # the worker holds after its first batch
    widget.cancel()
    gate.set()
    wait_idle(widget)
    assert [event.done for event in seen] == [1]  # 12 tiles, 1 per CPU batch: stopped after one
    assert (layer.data[2:] == 5).all() and _segmentations(viewer) == [SEG]
    assert any("cancelled" in message for message in notes["info"])
    assert widget.run_button.isEnabled() and widget.status.text().startswith("Cancelled")


def test_no_image_layer(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    widget = SegmentWidget(viewer)
    widget.run()
    assert not widget.running
    assert "no image layer" in widget.status.text()
    assert notes["error"] == [widget.status.text()]


def test_4d_image_is_refused(setup, notes):
    viewer, widget = setup
    viewer.add_image(np.zeros((2, 3, 16, 16), np.uint8), name="movie")
    widget.image_combo.setCurrentText("movie")
    widget.run()
    assert not widget.running
    assert "4 dimensions" in widget.status.text() and notes["error"]


def test_unavailable_device_is_refused(setup, notes):
    _, widget = setup
    missing = next(d for d in ("cuda", "mps") if d not in available_devices())
    widget.device_combo.addItem(missing)
    widget.device_combo.setCurrentText(missing)
    widget.run()
    assert not widget.running
    assert missing in widget.status.text() and notes["error"]


def test_a_file_that_is_not_a_model(setup, wait_idle, notes, tmp_path):
    viewer, widget = setup
    bad = tmp_path / "notes.safetensors"
    bad.write_text("not a model")
    widget.model_picker.set_file(bad)
    widget.run()
    wait_idle(widget)
    assert len(notes["error"]) == 1 and "notes.safetensors" in notes["error"][0]
    assert "failed" in widget.status.text()
    assert _segmentations(viewer) == [] and widget.run_button.isEnabled()


def _gate_after(monkeypatch, kind, count):
    """Hold the worker after ``count`` events of ``kind``; returns (gate, seen events)."""
    real = inference.iter_predict
    gate, seen = threading.Event(), []

    def gated(*args, **kwargs):
        for event in real(*args, **kwargs):
            yield event
            seen.append(event)
            if sum(isinstance(e, kind) for e in seen) == count:
                gate.wait(10)

    monkeypatch.setattr(inference, "iter_predict", gated)
    return gate, seen


def test_cancel_says_so_and_keeps_the_slices_already_segmented(
    setup, wait_idle, monkeypatch, qtbot
):
    """Walkthrough defect 5: "Cancelling…" stayed forever and the finished slices were lost."""
    from qtpy.QtCore import Qt

    viewer, widget = setup
    viewer.layers["cells"].data = np.random.default_rng(1).integers(0, 255, (8, 64, 64), np.uint8)
    layer = viewer.add_labels(np.full((8, 64, 64), 5, np.uint8), name=SEG)
    gate, seen = _gate_after(monkeypatch, inference.SlicePrediction, 3)
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert widget.status.text() == "Segmenting cells (all 8 slices)…"  # defect 11
    qtbot.waitUntil(
        lambda: sum(isinstance(e, inference.SlicePrediction) for e in seen) == 3, timeout=20_000
    )
    # the progress bar (tiles, 1 per slice here) with the time left
    qtbot.waitUntil(lambda: widget.progress.value() >= 2, timeout=10_000)
    assert not widget.progress.isHidden() and widget.progress.maximum() == 8
    assert widget.progress.format().startswith(f"{widget.progress.value()}/8 · about ")
    qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
    assert widget.status.text() == "Cancelling…"
    gate.set()
    wait_idle(widget)
    kept = sum(isinstance(e, inference.SlicePrediction) for e in seen)
    assert widget.status.text() == f"Cancelled: kept the {kept} slice(s) already segmented."
    assert kept < 8 and set(np.unique(layer.data[:kept])) <= {0, 1}
    assert (layer.data[kept:] == 5).all() and widget.progress.isHidden()


def test_removing_the_image_stops_the_work(setup, wait_idle, notes, monkeypatch):
    """Walkthrough defect 6: the run went on for 43 s, then dropped its result."""
    viewer, widget = setup
    viewer.layers["cells"].data = np.random.default_rng(1).integers(0, 255, (12, 64, 64), np.uint8)
    gate, seen = _gate_after(monkeypatch, inference.Progress, 1)
    widget.run()
    viewer.layers.remove("cells")
    gate.set()
    wait_idle(widget)
    assert sum(isinstance(e, inference.Progress) for e in seen) <= 2  # stopped at the next batch
    assert _segmentations(viewer) == []
    assert widget.status.text() == "Stopped: 'cells' was removed." and notes["error"] == []


def test_a_result_of_one_class_is_a_warning(setup, wait_idle, monkeypatch):
    """Walkthrough defect 4: every label 0 (transparent) was reported as a plain "Done"."""
    from dataclasses import replace

    from napari_unet_loop.widgets import segment_widget

    real, warnings = inference.iter_predict, []

    def background_only(*args, **kwargs):
        for event in real(*args, **kwargs):
            if isinstance(event, inference.SlicePrediction):
                event = replace(event, labels=np.zeros_like(event.labels))
            yield event

    monkeypatch.setattr(inference, "iter_predict", background_only)
    monkeypatch.setattr(segment_widget, "show_warning", warnings.append)
    viewer, widget = setup
    widget.run()
    wait_idle(widget)
    warning = "Every pixel is background: the model may not suit this image."
    assert warnings == [warning] and widget.status.text().endswith(warning)


def test_viewer_closed_while_running(setup, wait_idle, notes):
    viewer, widget = setup
    widget.run()
    viewer.close()
    wait_idle(widget)
    assert notes["error"] == []


def test_the_model_file_field_shows_only_for_a_model_file(make_napari_viewer, qtbot, model_file):
    viewer = make_napari_viewer()
    widget = SegmentWidget(viewer)
    qtbot.addWidget(widget)
    picker = widget.model_picker
    picker.set_file(model_file)
    widget.show()
    qtbot.waitExposed(widget)
    assert not picker.file_row.isHidden()
    # the drop-down has the width to itself; the file field goes below it
    assert picker.file_row.geometry().top() >= picker.combo.geometry().bottom()
    assert picker.combo.width() == picker.width()
    session_for(viewer).push_model(new_model(["a", "b"], depth=1, base_channels=2), "retrain 1")
    assert picker.combo.currentText() == "current: retrain 1" and picker.file_row.isHidden()
    picker.combo.setCurrentIndex(picker.combo.findData("file"))
    assert not picker.file_row.isHidden()


def test_the_contrast_choice_reaches_the_job(setup):
    _, widget = setup
    assert widget._request().contrast == "auto"
    widget.contrast_combo.setCurrentText("inverted")
    assert widget._request().contrast == "invert"


def test_the_segmentation_keeps_the_images_pixel_size_and_unit(setup, wait_idle, notes):
    viewer, widget = setup
    rng = np.random.default_rng(3)
    units = ("nanometer",) * 3
    viewer.add_image(
        rng.integers(0, 255, (2, 40, 40), dtype=np.uint8), name="em", scale=(40, 4, 4), units=units
    )
    widget.image_combo.setCurrentText("em")
    widget.run()
    wait_idle(widget)
    for name in ("em segmentation", "em uncertainty"):
        layer = viewer.layers[name]
        assert tuple(layer.scale) == (40, 4, 4)
        assert tuple(str(u) for u in layer.units) == units
    assert notes["error"] == []

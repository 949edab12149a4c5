"""Retrain draws a live loss / held-back Dice curve, throttled, and keeps it per model version."""

from __future__ import annotations

import time

from _loop_setup import SEG, correct_slice, loop_viewer
from _loop_setup import retrain_widget as _widget
from qtpy.QtCore import Qt

from napari_unet_loop.app.progress_text import UPDATES_PER_SECOND
from napari_unet_loop.app.session import session_for
from napari_unet_loop.core.training import train as training
from napari_unet_loop.core.training.train import TrainUpdate

STEPS = 300


def test_the_curve_follows_training_and_stays_with_its_version(
    make_napari_viewer, qtbot, wait_idle, monkeypatch
):
    def fake(
        model, images, labels, *, config, val_images=None, val_labels=None, weights=None, **keep
    ):
        for i in range(1, STEPS):
            time.sleep(0.002)
            yield TrainUpdate(i, STEPS, 1.0 / i, 0.5 if i % 10 == 0 else None, i * 0.002)
        yield TrainUpdate(STEPS, STEPS, 0.0, 0.6, 1.0, done=True, model=model.copy())

    monkeypatch.setattr(training, "train", fake)
    viewer = loop_viewer(make_napari_viewer)
    widget = _widget(viewer)
    correct_slice(viewer.layers[SEG], 0, viewer.layers["em truth"].data)
    started = time.monotonic()
    widget.retrain()
    assert widget.curve.isVisible() or not widget.isVisible()
    wait_idle(widget)
    seconds = time.monotonic() - started
    live = widget.curve.live
    assert len(live.loss) == STEPS and len(live.dice) == STEPS // 10  # the final one too
    # throttled with the status line: a few repaints a second, not one per iteration
    assert widget.curve.repaints <= seconds * UPDATES_PER_SECOND + 3

    versions = session_for(viewer).versions
    assert versions[-1].curve is live and versions[0].curve is None
    widget.show()
    history = widget.models.history
    for row, shown in ((0, False), (1, True)):
        item = history.item(row)
        qtbot.mouseClick(
            history.viewport(), Qt.MouseButton.LeftButton, pos=history.visualItemRect(item).center()
        )
        assert widget.curve.isVisible() is shown
    assert widget.curve.curve is live
    widget.curve.grab()  # paints without error

"""Retraining through the widget never freezes the viewer: a GUI timer keeps ticking."""

from __future__ import annotations

import time
from dataclasses import replace

from _loop_setup import SEG, correct_slice, loop_viewer
from qtpy.QtCore import QTimer

from napari_unet_loop.app.session import session_for
from napari_unet_loop.widgets.metrics_widget import MetricsWidget
from napari_unet_loop.widgets.retrain_widget import RetrainWidget

MAX_GAP_S = 0.25


def test_gui_keeps_ticking_while_retraining(make_napari_viewer, qtbot, wait_idle):
    viewer = loop_viewer(make_napari_viewer)
    metrics = MetricsWidget(viewer)  # recomputes when the new model arrives
    metrics.pred_combo.setCurrentText(SEG)
    metrics.truth_combo.setCurrentText("em truth")
    widget = RetrainWidget(viewer)
    widget.labels_combo.setCurrentText(SEG)
    widget.settings = replace(widget.settings, patch_size=64, batch_size=4)
    widget.iterations.setValue(15)
    correct_slice(viewer.layers[SEG], 0, viewer.layers["em truth"].data)
    viewer.dims.set_current_step(0, 2)  # an unedited slice: re-segmented after training
    # The widget makes torch import its compiler stack when it opens (once per process, seconds
    # holding the GIL in long stretches); a user paints long before pressing Retrain.
    qtbot.waitUntil(lambda: not widget.warming_up, timeout=60_000)
    qtbot.wait(400)  # let the metrics' first computation pass

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    widget.retrain()
    wait_idle(widget, 120_000)
    qtbot.wait(500)  # the metrics update after the new model
    timer.stop()

    assert len(session_for(viewer).versions) == 2, widget.status.text()
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) > 20
    assert max(gaps) < MAX_GAP_S, f"GUI froze for {max(gaps):.3f} s"

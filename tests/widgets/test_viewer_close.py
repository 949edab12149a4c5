"""Quitting napari at any moment never takes Python down (checked in fresh processes).

Each script leaves a worker thread running past the viewer's close and Python's exit, as when
napari is quit at once: Retrain's torch warm-up and Segment's torch import (they start when
the widgets open) and a Dice / IoU computation. Before they were handled, the thread outlived
the Qt objects it signals through and Python aborted.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Each case starts napari in a fresh process: 10-13 s apiece.
pytestmark = pytest.mark.slow

SLOW_WARM_UP = """
from napari_unet_loop.app import warm_up

warm_up.warm_up = lambda: time.sleep(3)
"""

SLOW_IMPORT = """
from napari_unet_loop.app import warm_up

warm_up.import_torch = lambda: time.sleep(3)
"""

SLOW_METRICS = """
from napari_unet_loop.app import evaluation

real = evaluation.evaluate
evaluation.evaluate = lambda *args, **kwargs: time.sleep(3) or real(*args, **kwargs)
"""

SCRIPT = """
import time

import numpy as np
{setup}
import napari
from qtpy.QtWidgets import QApplication

viewer = napari.Viewer(show=False)
viewer.add_labels(np.zeros((2, 32, 32), np.uint8), name="a")
viewer.add_labels(np.ones((2, 32, 32), np.uint8), name="b")
_, widget = viewer.window.add_plugin_dock_widget("napari-unet-loop", {widget!r})
{start}
viewer.close()
end = time.monotonic() + 1
while time.monotonic() < end:
    QApplication.processEvents()
    time.sleep(0.01)
print("closed")
"""


@pytest.mark.parametrize(
    ("setup", "widget", "start"),
    [
        (SLOW_WARM_UP, "Correct and Retrain", ""),
        (SLOW_IMPORT, "Segment", ""),
        (SLOW_METRICS, "Dice / IoU", "widget.recompute()"),
    ],
    ids=["retrain warm-up", "segment torch import", "dice computation"],
)
def test_quitting_with_a_worker_running_exits_cleanly(setup, widget, start):
    script = textwrap.dedent(SCRIPT).format(setup=setup, widget=widget, start=start)
    # pytest-xvfb has put DISPLAY in the environment the child inherits.
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "closed" in out.stdout and "has been deleted" not in out.stderr


def test_closing_the_viewer_during_retrain_leaves_no_notification_for_the_next(
    make_napari_viewer, notes, qtbot, monkeypatch
):
    """Walkthrough defect 9: "Retrain cancelled" popped up later in the next viewer."""
    import threading
    import time

    from _loop_setup import SEG, correct_slice, loop_viewer

    from napari_unet_loop.core.training import train as training
    from napari_unet_loop.core.training.train import TrainUpdate
    from napari_unet_loop.widgets.retrain_widget import RetrainWidget

    started = threading.Event()

    def endless(
        model, images, labels, *, config, val_images=None, val_labels=None, weights=None, **keep
    ):
        for i in range(1, 10**6):
            started.set()
            time.sleep(0.01)
            yield TrainUpdate(i, 10**6, 0.5, None, 0.0)

    monkeypatch.setattr(training, "train", endless)
    viewer = loop_viewer(make_napari_viewer)
    widget = RetrainWidget(viewer)
    widget.labels_combo.setCurrentText(SEG)
    correct_slice(viewer.layers[SEG], 0, viewer.layers["em truth"].data)
    widget.retrain()
    qtbot.waitUntil(started.is_set, timeout=30_000)
    viewer.close()
    qtbot.waitUntil(lambda: not widget.running, timeout=10_000)
    qtbot.wait(50)
    assert notes["info"] == [] and notes["error"] == []

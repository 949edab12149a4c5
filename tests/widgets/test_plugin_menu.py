"""Widgets opened from napari's Plugins menu: napari hands them a proxy of the viewer."""

from __future__ import annotations

import warnings

import numpy as np

from napari_unet_loop.app.session import session_for
from napari_unet_loop.widgets._layers import real_viewer, viewer_alive

PLUGIN = "napari-unet-loop"
NAMES = ("Segment", "Correct and Retrain", "Dice / IoU", "Batch segment")


def test_every_widget_gets_the_real_viewer_and_segment_delivers(
    make_napari_viewer, model_file, wait_idle, notes
):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(rng.integers(0, 255, (2, 64, 64), dtype=np.uint8), name="cells")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        widgets = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name)[1] for name in NAMES}
        segment = widgets["Segment"]
        segment.model_picker.set_file(model_file)
        segment.device_combo.setCurrentText("cpu")
        segment.run()
        wait_idle(segment)
    assert not [w for w in caught if "Private attribute" in str(w.message)]
    assert all(widget._viewer is viewer for widget in widgets.values())
    sessions = [widgets[name]._session for name in NAMES[:3]]
    sessions.append(widgets["Batch segment"].model_picker._session)
    assert all(session is session_for(viewer) for session in sessions)
    assert segment.status.text().startswith("Done"), segment.status.text()
    layer = viewer.layers["cells segmentation"]
    assert layer.data.shape == (2, 64, 64)
    retrain = widgets["Correct and Retrain"]
    assert retrain.labels_combo.currentText() == "cells segmentation"
    assert [v.model.name for v in retrain._session.versions] == ["tiny"]
    assert notes["error"] == []


def test_viewer_alive_follows_the_window(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    assert viewer_alive(real_viewer(viewer))
    viewer.close()
    qtbot.waitUntil(lambda: not viewer_alive(viewer), timeout=5000)

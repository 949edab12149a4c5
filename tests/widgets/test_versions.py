"""Model versions: one click re-segments with the chosen version; A/B shows the previous one."""

from __future__ import annotations

from _loop_setup import SEG, correct_slice, loop_viewer, sure_prediction
from _loop_setup import retrain_widget as _widget
from qtpy.QtCore import Qt

from napari_unet_loop.app.session import session_for
from napari_unet_loop.core.inference import predict as inference
from napari_unet_loop.widgets._compare import compare_name
from napari_unet_loop.widgets._layers import META_KEY


def _click_row(qtbot, history, row):
    rect = history.visualItemRect(history.item(row))
    qtbot.mouseClick(history.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_one_click_switches_the_version_and_ab_compares(
    make_napari_viewer, fake_train, wait_idle, qtbot, monkeypatch
):
    viewer = loop_viewer(make_napari_viewer)
    first = session_for(viewer).model
    scales = []

    def predict(image, model, **kwargs):  # the first version says 1 everywhere, later ones 2
        scales.append(kwargs.get("scale", 1.0))
        value = 1 if model is first else 2
        return sure_prediction(image.shape, value)

    monkeypatch.setattr(inference, "predict", predict)
    seg = viewer.layers[SEG]
    seg.metadata.setdefault(META_KEY, {})["scale"] = 0.5  # Segment resized the slices
    widget = _widget(viewer)
    widget.show()
    correct_slice(seg, 0, viewer.layers["em truth"].data)
    widget.retrain()
    wait_idle(widget)
    session = session_for(viewer)
    assert session.current_index == 1 and session.previous_index == 0

    _click_row(qtbot, widget.models.history, 0)  # one click: version 0 again
    assert session.current_index == 0 and session.previous_index == 1
    wait_idle(widget)
    assert (seg.data[1:] == 1).all(), "unedited slices re-segmented by version 0"
    assert not (seg.data[0] == 1).all(), "the corrected slice is kept"
    assert widget.status.text().endswith("Re-segmented 2 slices.")

    z = viewer.dims.current_step[0]
    qtbot.mouseClick(widget.compare, Qt.MouseButton.LeftButton)  # B: the previous version
    other = viewer.layers[compare_name(SEG)]
    qtbot.waitUntil(lambda: other.visible, timeout=30_000)
    assert (other.data[z] == 2).all() and not seg.visible
    assert "previous model" in widget.status.text()
    qtbot.mouseClick(widget.compare, Qt.MouseButton.LeftButton)  # A: the current one
    assert seg.visible and not other.visible
    widget.compare._key(viewer)  # Shift-B: the slice is done, so B shows at once
    assert other.visible and not seg.visible and widget.compare.isChecked()
    assert scales and set(scales) == {0.5}, "re-segmenting and A/B predict at the layer's scale"

"""Widgets follow the session's signals while they live, and drop them when they go."""

from __future__ import annotations

import pytest
from _loop_setup import SEG, correct_slice, loop_viewer, tiny_model

from napari_unet_loop.app.session import session_for
from napari_unet_loop.widgets.loop_panel import LoopPanel
from napari_unet_loop.widgets.metrics_widget import MetricsWidget
from napari_unet_loop.widgets.retrain_widget import RetrainWidget
from napari_unet_loop.widgets.segment_widget import SegmentWidget


def _connections(session) -> int:
    """Connections to the signals views follow (an autosaver follows strokes for its layer)."""
    return len(session.events.edits) + len(session.events.versions)


def test_a_painted_stroke_reaches_the_session_and_the_open_widget(make_napari_viewer):
    viewer = loop_viewer(make_napari_viewer)
    session = session_for(viewer)
    widget = RetrainWidget(viewer)
    strokes = []
    session.events.painted.connect(lambda layer, slices: strokes.append((layer, slices)))
    correct_slice(viewer.layers[SEG], 1, viewer.layers["em truth"].data)
    assert strokes == [(SEG, {1})]
    assert session.painted_mask(SEG, 1).any()
    assert widget.edited_label.text() == "Edited slices: 1"


@pytest.mark.parametrize("make", [RetrainWidget, MetricsWidget, SegmentWidget, LoopPanel])
def test_a_destroyed_widget_is_disconnected(make_napari_viewer, qtbot, make):
    viewer = loop_viewer(make_napari_viewer)
    session = session_for(viewer)
    before = _connections(session)
    widget = make(viewer)
    assert _connections(session) > before
    with qtbot.waitSignal(widget.destroyed):
        widget.deleteLater()
    assert _connections(session) == before
    # later changes reach no deleted Qt object
    session.push_model(tiny_model(), "another")
    correct_slice(viewer.layers[SEG], 0, viewer.layers["em truth"].data)

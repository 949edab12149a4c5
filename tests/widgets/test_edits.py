"""Edit tracking of Labels layers (_edits), programmatic writes, and autosave (_autosave)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from napari.layers import Image, Labels
from napari.layers._source import layer_source

from napari_unet_loop.app.session import LoopSession, session_for
from napari_unet_loop.core.training.corrections import CorrectionStore
from napari_unet_loop.widgets._autosave import (
    autosave,
    autosaver_for,
    corrections_folder,
    watch_viewer,
)
from napari_unet_loop.widgets._edits import (
    programmatic_update,
    track_edits,
    tracker_for,
    write_slices,
)


@pytest.fixture
def layer():
    return Labels(np.zeros((3, 32, 32), np.uint8), name="seg")


@pytest.fixture
def session():
    return LoopSession()


def test_a_brush_stroke_marks_its_slice_and_pixels(layer, session):
    tracker = track_edits(layer, session)
    layer.brush_size = 3
    layer.paint((1, 5, 5), 1)
    layer.brush_size = 7
    layer.paint((1, 20, 20), 1)  # a round brush: only part of its bounding box
    assert session.edited_slices("seg") == [1]
    painted = tracker.painted_mask(1)
    np.testing.assert_array_equal(painted, layer.data[1] == 1)
    assert painted[4:7, 4:7].all() and not painted[17, 17]
    assert not tracker.painted_mask(0).any()


def test_fill_and_data_setitem_are_edits(layer, session):
    tracker = track_edits(layer, session)
    layer.fill((2, 0, 0), 1)
    layer.data_setitem((np.array([0, 0]), np.array([3, 4]), np.array([3, 9])), 1)
    assert session.edited_slices("seg") == [0, 2]
    assert tracker.painted_mask(2).all()
    assert tracker.painted_mask(0).sum() == 2 and tracker.painted_mask(0)[4, 9]


def test_painting_in_3d_marks_every_slice_it_reaches(layer, session):
    tracker = track_edits(layer, session)
    layer.n_edit_dimensions = 3
    layer.brush_size = 3
    layer.paint((1, 10, 10), 1)
    assert session.edited_slices("seg") == [0, 1, 2]
    assert tracker.painted_mask(0)[10, 10] and not tracker.painted_mask(0)[0, 0]


def test_2d_labels_edit_slice_zero(session):
    layer = Labels(np.zeros((16, 16), np.uint8), name="flat")
    tracker = track_edits(layer, session)
    layer.paint((8, 8), 1)
    layer.data_setitem((np.array([0]), np.array([0])), 1)
    assert session.edited_slices("flat") == [0]
    assert tracker.painted_mask(0)[8, 8] and tracker.painted_mask(0)[0, 0]


def test_replacing_the_data_marks_the_slices_that_changed(layer, session):
    tracker = track_edits(layer, session)
    new = layer.data.copy()
    new[2, 3:5, 3:5] = 1
    layer.data = new
    assert session.edited_slices("seg") == [2]
    assert tracker.painted_mask(2).sum() == 4


def test_a_new_shape_drops_the_old_edits(layer, session):
    tracker = track_edits(layer, session)
    layer.paint((1, 5, 5), 1)
    layer.data = np.zeros((5, 32, 32), np.uint8)
    assert session.edited_slices("seg") == [] and tracker.painted() == {}


def test_programmatic_writes_are_not_edits(layer, session):
    track_edits(layer, session)
    data_events = []
    layer.events.data.connect(lambda event: data_events.append(event))
    with programmatic_update(layer), programmatic_update(layer):  # nesting is fine
        layer.paint((0, 5, 5), 1)
        layer.data = np.ones((3, 32, 32), np.uint8)
    write_slices(layer, {2: np.full((32, 32), 3, np.uint8)})
    assert session.edited_slices("seg") == []
    assert (layer.data[2] == 3).all() and (layer.data[1] == 1).all()
    assert len(data_events) == 2  # write_slices tells listeners (e.g. metrics) about it
    layer.paint((0, 5, 5), 0)
    assert session.edited_slices("seg") == [0]


def test_tracking_twice_connects_once(layer, session):
    first = track_edits(layer, session)
    assert track_edits(layer, session) is first
    strokes = []
    session.events.painted.connect(lambda name, slices: strokes.append((name, slices)))
    layer.paint((0, 5, 5), 1)
    assert strokes == [("seg", {0})]


def test_renaming_the_layer_keeps_its_edits(layer, session):
    track_edits(layer, session)
    layer.paint((0, 5, 5), 1)
    layer.name = "renamed"
    layer.paint((1, 5, 5), 1)
    assert session.edited_slices("renamed") == [0, 1] and session.edited_slices("seg") == []


def test_only_2d_or_3d_labels_are_tracked(session):
    with pytest.raises(Exception, match="2D or Z×Y×X"):
        track_edits(Labels(np.zeros((2, 2, 8, 8), np.uint8)), session)


def _viewer_with_segmentation(make_napari_viewer, image):
    viewer = make_napari_viewer()
    viewer.add_image(image, name="em")
    watch_viewer(viewer)
    seg = viewer.add_labels(
        np.zeros(image.shape, np.uint8),
        name="em segmentation",
        metadata={"unet_loop": {"image_layer": "em", "model": "m", "classes": ["a", "b"]}},
    )
    return viewer, seg


def test_corrections_autosave_as_you_paint_and_reload_in_a_new_viewer(
    make_napari_viewer, qtbot, tmp_path
):
    image = np.random.default_rng(0).integers(0, 255, (3, 32, 32), dtype=np.uint8)
    viewer, seg = _viewer_with_segmentation(make_napari_viewer, image)
    saver = autosaver_for(seg)
    assert saver.store.folder.parent == tmp_path / "home" / ".napari-unet-loop" / "corrections"
    seg.paint((2, 10, 10), 1)
    assert saver._timer.remainingTime() == 0  # written as soon as the paint event is handled
    qtbot.waitUntil(lambda: saver.store.path(2).exists(), timeout=3000)
    seg.paint((2, 12, 10), 1)
    assert 0 <= saver._timer.remainingTime() <= 50
    qtbot.waitUntil(lambda: (saver.store.load()[2][0] == seg.data[2]).all(), timeout=3000)
    labels, mask = saver.store.load()[2]
    np.testing.assert_array_equal(labels, seg.data[2])
    assert mask[10, 10] and mask.sum() == (seg.data[2] == 1).sum()
    viewer.close()

    other, fresh = _viewer_with_segmentation(make_napari_viewer, image.copy())
    assert session_for(other).edited_slices("em segmentation") == [2]
    np.testing.assert_array_equal(fresh.data[2], labels)
    assert tracker_for(fresh).painted_mask(2)[10, 10]


def test_a_different_image_of_the_same_name_does_not_reload(make_napari_viewer, qtbot):
    image = np.zeros((3, 32, 32), np.uint8)
    viewer, seg = _viewer_with_segmentation(make_napari_viewer, image)
    seg.paint((1, 10, 10), 1)
    viewer.layers.remove(seg)  # removing saves at once, without waiting for the timer
    other, fresh = _viewer_with_segmentation(make_napari_viewer, image + 1)
    assert session_for(other).edited_slices("em segmentation") == []
    assert not fresh.data.any()


def test_a_stroke_is_saved_at_once_and_a_long_one_every_50_ms(
    make_napari_viewer, qtbot, monkeypatch
):
    """Walkthrough defect 7: saves waited for a 0.5 s pause, so a crash lost the last stroke."""
    saves = []
    monkeypatch.setattr(CorrectionStore, "save", lambda self, z, *a: saves.append(z))
    viewer, seg = _viewer_with_segmentation(make_napari_viewer, np.zeros((3, 32, 32), np.uint8))
    seg.paint((0, 10, 4), 1)
    qtbot.waitUntil(lambda: saves == [0], timeout=3000)
    start = time.monotonic()
    for x in range(5, 25):
        seg.paint((0, 10, x), 1)
    elapsed = time.monotonic() - start
    qtbot.waitUntil(lambda: len(saves) >= 2, timeout=3000)  # the rest, within 50 ms
    qtbot.wait(100)
    assert set(saves) == {0} and len(saves) <= 3 + elapsed / 0.05  # not one per mouse move


def test_only_one_layer_autosaves_per_image(make_napari_viewer):
    viewer, seg = _viewer_with_segmentation(make_napari_viewer, np.zeros((2, 8, 8), np.uint8))
    second = viewer.add_labels(np.zeros((2, 8, 8), np.uint8), name="second")
    assert autosave(second, viewer.layers["em"], session_for(viewer)) is None
    assert autosaver_for(seg) is not None


def test_images_from_files_save_beside_the_file(tmp_path):
    path = tmp_path / "cells.tif"
    path.write_bytes(b"")
    with layer_source(path=str(path)):
        image = Image(np.zeros((2, 8, 8), np.uint8), name="cells")
    labels = Labels(np.zeros((2, 8, 8), np.uint8))
    assert corrections_folder(image, labels) == tmp_path / "cells.unet-loop-corrections"
    no_file = Image(np.zeros((2, 8, 8), np.uint8), name="cells")
    assert corrections_folder(no_file, labels).name.startswith("cells-")


def test_edits_made_before_autosave_starts_are_saved_too(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 16, 16), np.uint8), name="em")
    seg = viewer.add_labels(
        np.zeros((2, 16, 16), np.uint8),
        name="em segmentation",
        metadata={"unet_loop": {"image_layer": "em", "model": "m", "classes": ["a", "b"]}},
    )
    track_edits(seg, session_for(viewer))  # what Segment does when it makes the layer
    seg.paint((1, 8, 8), 1)
    watch_viewer(viewer)  # e.g. the Retrain widget opens later
    saver = autosaver_for(seg)
    qtbot.waitUntil(lambda: saver.store.path(1).exists(), timeout=3000)

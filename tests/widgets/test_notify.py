"""A worker's notifications go to the viewer that started it, never to another one.

napari shows notifications in the window that was active last (the viewer made last, here).
"""

from __future__ import annotations

import threading
import time

import pytest

from napari_unet_loop.widgets._worker import start_worker


def endless(started: threading.Event):
    while True:
        started.set()
        time.sleep(0.01)
        yield None


def failing():
    yield None
    raise ValueError("bad slice")


@pytest.fixture
def two_viewers(make_napari_viewer):
    first = make_napari_viewer()
    return first, make_napari_viewer()  # the second is napari's current viewer


def cancel_in(viewer, qtbot) -> None:
    started, finished = threading.Event(), []
    worker = start_worker(
        endless, started, description="Retrain", viewer=viewer, on_finish=lambda: finished.append(1)
    )
    qtbot.waitUntil(started.is_set, timeout=10_000)
    worker.quit()
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)


def test_cancel_is_notified_in_its_own_viewer_only(two_viewers, notes, qtbot):
    first, second = two_viewers
    cancel_in(first, qtbot)
    assert notes["info"] == []  # the user is looking at the other viewer
    cancel_in(second, qtbot)
    assert notes["info"] == ["Retrain cancelled"]


def test_an_error_is_notified_in_its_own_viewer_only(two_viewers, notes, qtbot):
    first, second = two_viewers
    seen, finished = [], []
    for count, viewer in enumerate((first, second), start=1):
        start_worker(
            failing,
            description="Segment",
            viewer=viewer,
            on_error=seen.append,
            on_finish=lambda: finished.append(1),
        )
        qtbot.waitUntil(lambda: len(finished) == count, timeout=10_000)  # noqa: B023
    assert len(seen) == 2  # the widget hears of both (its status line)
    assert notes["error"] == ["Segment failed: ValueError: bad slice"]

"""napari's activity spinner turns slowly while our jobs run, and at its pace again after."""

from __future__ import annotations

import threading
import time

from napari_unet_loop.widgets._spinner import SLOW_SPEED, _spinners
from napari_unet_loop.widgets._worker import start_worker


def waiting(started: threading.Event, release: threading.Event):
    started.set()
    while not release.is_set():
        time.sleep(0.01)
        yield None


def test_the_spinner_is_slow_while_jobs_run_and_back_to_its_pace_after(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    spinners = _spinners()
    assert spinners, "napari's status bar has an animated activity indicator"
    assert {m.speed() for m in spinners} == {100}
    jobs = []
    for _ in range(2):
        started, release, finished = threading.Event(), threading.Event(), []
        start_worker(
            waiting,
            started,
            release,
            description="Segment",
            viewer=viewer,
            on_finish=lambda finished=finished: finished.append(1),
        )
        qtbot.waitUntil(started.is_set, timeout=10_000)
        jobs.append((release, finished))
    assert {m.speed() for m in spinners} == {SLOW_SPEED}
    jobs[0][0].set()
    qtbot.waitUntil(lambda: bool(jobs[0][1]), timeout=10_000)
    assert {m.speed() for m in spinners} == {SLOW_SPEED}  # the other job still runs
    jobs[1][0].set()
    qtbot.waitUntil(lambda: bool(jobs[1][1]), timeout=10_000)
    assert {m.speed() for m in spinners} == {100}

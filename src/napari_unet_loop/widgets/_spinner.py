"""napari's activity spinner turns slowly while our work runs.

The spinner in a napari window's status bar is an animated picture, about 25 frames a second.
A window that holds an OpenGL canvas is recomposed whole on every repaint, and under software
OpenGL (remote desktops, virtual machines, computers without a graphics card) each frame costs
the renderer ~20 ms of CPU, taken from the cores the network runs on. Measured on 2 cores:
Segment of 30 ISBI slices took 22.6 s with the spinner at full pace, 14.6 s slowed (the
renderer's threads used 12.5 s and 2.9 s of CPU). The dock's own progress bar still moves.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtGui import QMovie
from qtpy.QtWidgets import QApplication, QLabel, QMainWindow

SLOW_SPEED = 10  # percent of the spinner's own pace
_running = 0  # our jobs running in this process


def _spinners() -> list[QMovie]:
    """The animated pictures in the status bars of the open main windows."""
    movies = []
    for window in QApplication.topLevelWidgets():
        if isinstance(window, QMainWindow) and window.statusBar() is not None:
            labels = window.statusBar().findChildren(QLabel)
            movies.extend(m for m in (label.movie() for label in labels) if m is not None)
    return movies


def _set_speed(percent: int) -> None:
    for movie in _spinners():
        movie.setSpeed(percent)


def slow_spinners() -> Callable[[], None]:
    """Slow every status-bar spinner until the returned function is called (once per job;
    the spinners get their pace back when the last job ends)."""
    global _running
    _running += 1
    _set_speed(SLOW_SPEED)
    released = False

    def release() -> None:
        global _running
        nonlocal released
        if released:
            return
        released = True
        _running -= 1
        if _running == 0:
            _set_speed(100)

    return release

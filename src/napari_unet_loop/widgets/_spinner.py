"""napari's activity spinner turns slowly while our work runs.

The spinner in a napari window's status bar is an animated picture, about 25 frames a second.
A window that holds an OpenGL canvas is recomposed whole on every repaint, and under software
OpenGL (remote desktops, virtual machines, computers without a graphics card) each frame costs
the renderer ~20 ms of CPU, taken from the cores the network runs on. Measured on 2 cores:
Segment of 30 ISBI slices took 22.6 s with the spinner at full pace, 14.6 s slowed (the
renderer's threads used 12.5 s and 2.9 s of CPU). The dock's own progress bar still moves.
"""

from __future__ import annotations

from qtpy.QtGui import QMovie
from qtpy.QtWidgets import QApplication, QLabel, QMainWindow

SLOW_SPEED = 10  # percent of the spinner's own pace
NORMAL_SPEED = 100


def _spinners() -> list[QMovie]:
    """The animated pictures in the status bars of the open main windows."""
    movies = []
    for window in QApplication.topLevelWidgets():
        if isinstance(window, QMainWindow) and window.statusBar() is not None:
            labels = window.statusBar().findChildren(QLabel)
            movies.extend(m for m in (label.movie() for label in labels) if m is not None)
    return movies


def set_spinner_speed(percent: int) -> None:
    """Set every status-bar spinner's pace (``SLOW_SPEED`` while jobs run, else normal)."""
    for movie in _spinners():
        movie.setSpeed(percent)

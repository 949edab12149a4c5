"""Notifications about work a viewer started, shown in that viewer only.

napari shows every notification in the window that was active last, whichever viewer the
message is about. So a message from a worker goes out only while the viewer that started the
work is open and the current one; otherwise the widget's status line, which every caller sets
too, carries it. (A worker ending after its viewer closed once left "Retrain cancelled" in the
next viewer.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from napari import current_viewer

from ._layers import viewer_alive

if TYPE_CHECKING:
    from napari.viewer import Viewer


def notify(viewer: Viewer | None, show: Callable[[str], None], text: str) -> bool:
    """``show(text)`` if ``viewer`` (None: any) is open and current; True if it was shown."""
    if viewer is not None and not (viewer_alive(viewer) and current_viewer() is viewer):
        return False
    show(text)
    return True

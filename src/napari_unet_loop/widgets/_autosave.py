"""Autosave corrections as the user paints, and put them back on the next start.

A tracked layer's edited slices are written as the user paints (one file per slice, see
``core.training.corrections``): the first paint event of a stroke as soon as the event is handled
(napari sends it before it writes the pixels), later ones at most ``AUTOSAVE_INTERVAL_MS``
after it, so a crash loses no stroke; and at once
when the layer leaves the viewer (also when the viewer closes). When a segmentation layer
appears for an image with saved corrections, they are written back into it and its slices
count as edited again.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QHBoxLayout, QLineEdit, QPushButton, QWidget

from ..app.corrections import (
    CorrectionStore,
    default_folder,
    home_folder,
    image_fingerprint,
)
from ..app.errors import UnetLoopError
from ..app.session import session_for
from ._edits import EditTracker, forget, track_edits, write_slices
from ._layers import META_KEY, get_layer, real_viewer

if TYPE_CHECKING:
    from napari.viewer import Viewer

    from ..app.session import LoopSession

AUTOSAVE_INTERVAL_MS = 50  # at most ~20 writes a second while dragging the brush
_WATCHED: weakref.WeakSet = weakref.WeakSet()  # viewers whose layers watch_viewer adopts


def corrections_folder(image: Image | None, labels: Labels) -> Path:
    """Where corrections autosave: beside the image file if it has a writable one, else home.

    Images without a file (samples, arrays) use ``~/.napari-unet-loop/corrections/<name>-<hash>``
    where the hash is of the image's first slice, so reopening the same sample finds them.
    """
    path = image.source.path if image is not None else None
    if path and Path(path).is_file() and os.access(Path(path).parent, os.W_OK):
        return default_folder(path)
    if image is None:
        return home_folder(labels.name)
    data = image.data[-1] if image.multiscale else image.data
    return home_folder(image.name, image_fingerprint(data))


class Autosaver:
    """Saves a tracked layer's edited slices as the user paints (see the module's note)."""

    def __init__(self, tracker: EditTracker, folder: Path) -> None:
        self.tracker = tracker
        self.store = CorrectionStore(folder)
        self._pending: set[int] = set()
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._last_write = 0.0
        self._timer.timeout.connect(self.flush)
        tracker.session.events.painted.connect(self._painted)

    def _painted(self, layer: str, slices: set[int]) -> None:
        if layer == self.tracker.name:
            self.save_later(slices)

    def save_later(self, slices: set[int]) -> None:
        """Save these slices right after this event, or within the interval of the last write."""
        self._pending |= slices
        if not self._timer.isActive():  # never restarted: a long stroke still saves often
            since = (time.monotonic() - self._last_write) * 1000
            self._timer.start(max(0, round(AUTOSAVE_INTERVAL_MS - since)))

    def flush(self) -> None:
        """Write the slices edited since the last save (also called on removal and close)."""
        self._timer.stop()
        layer, pending, self._pending = self.tracker.layer, self._pending, set()
        self._last_write = time.monotonic()
        if layer is None:
            return
        try:
            for z in sorted(pending):
                plane = layer.data if layer.ndim == 2 else layer.data[z]
                self.store.save(z, np.asarray(plane), self.tracker.painted_mask(z))
        except OSError as exc:
            show_error(f"Could not autosave corrections to {self.store.folder}: {exc}")

    def reload(self) -> list[int]:
        """Put saved corrections back into the layer (slices not edited in this session)."""
        layer = self.tracker.layer
        edited = set(self.tracker.painted())
        planes, masks = {}, {}
        for z, (plane, mask) in self.store.load().items():
            in_range = z == 0 if layer.ndim == 2 else 0 <= z < layer.data.shape[0]
            if z in edited or not in_range or plane.shape != layer.data.shape[-2:]:
                continue
            planes[z], masks[z] = plane, mask
        if planes:
            write_slices(layer, planes)
            self.tracker.session.restore(self.tracker.name, masks)
        return sorted(planes)

    def retarget(self, folder: Path) -> list[int]:
        """Save into ``folder`` from now on: copy this session's edits there, reload its own."""
        self.flush()
        self.store = CorrectionStore(folder)
        self._pending = set(self.tracker.painted())
        self.flush()
        return self.reload()

    def detach(self) -> None:
        self.flush()
        self.tracker.session.events.painted.disconnect(self._painted)
        _AUTOSAVERS.pop(self.tracker.layer, None)


_AUTOSAVERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Labels -> Autosaver


def autosave(
    layer: Labels, image: Image | None, session: LoopSession, folder: Path | None = None
) -> Autosaver | None:
    """Autosave ``layer``'s corrections (reloading saved ones first); idempotent.

    Returns None when another layer already autosaves to the same folder, so two layers
    never overwrite each other's files.
    """
    saver = _AUTOSAVERS.get(layer)
    if saver is not None:
        return saver
    folder = Path(folder) if folder is not None else corrections_folder(image, layer)
    if any(s.store.folder == folder for s in _AUTOSAVERS.values()):
        return None
    saver = _AUTOSAVERS[layer] = Autosaver(track_edits(layer, session), folder)
    try:
        restored = saver.reload()
    except UnetLoopError as exc:
        show_error(str(exc))
        return saver
    if restored:
        show_info(f"Reloaded saved corrections of '{layer.name}' on slice(s) {restored}")
    earlier = set(saver.tracker.painted()) - set(restored)  # edited before autosave started
    if earlier:
        saver.save_later(earlier)
    return saver


def autosaver_for(layer: Labels) -> Autosaver | None:
    return _AUTOSAVERS.get(layer)


def _adopt(viewer: Viewer, layer) -> None:
    """Track and autosave a segmentation layer (one whose metadata names its image)."""
    if isinstance(layer, Image):
        for other in list(viewer.layers):
            if isinstance(other, Labels):
                _adopt(viewer, other)
        return
    meta = layer.metadata.get(META_KEY) if isinstance(layer, Labels) else None
    if not meta or layer.ndim not in (2, 3):
        return
    image = get_layer(viewer, meta.get("image_layer", ""), Image)
    if image is not None:
        autosave(layer, image, session_for(viewer))
    else:
        track_edits(layer, session_for(viewer))


def _on_removed(viewer: Viewer, layer) -> None:
    saver = _AUTOSAVERS.get(layer)
    if saver is not None:
        saver.detach()
    tracker = forget(layer)
    if tracker is not None:
        session_for(viewer).clear_edits(tracker.name)


def watch_viewer(viewer: Viewer) -> None:
    """Track, autosave and reload every segmentation layer of ``viewer``, now and later."""
    viewer = real_viewer(viewer)
    if viewer in _WATCHED:
        return
    _WATCHED.add(viewer)
    for layer in list(viewer.layers):
        _adopt(viewer, layer)
    viewer.layers.events.inserted.connect(lambda event: _adopt(viewer, event.value))
    viewer.layers.events.removed.connect(lambda event: _on_removed(viewer, event.value))


class AutosaveFolder(QWidget):
    """Shows where a labels layer autosaves; "Use folder" switches to the folder typed in."""

    def __init__(self, session: LoopSession, say: Callable[[str], None]) -> None:
        super().__init__()
        self._session, self._say = session, say
        self._labels: Labels | None = None
        self._image: Image | None = None
        self.edit, self.button = QLineEdit(), QPushButton("Use folder")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(self.button)
        self.button.clicked.connect(self.use)

    def follow(self, labels: Labels | None, image: Image | None, *, start: bool) -> None:
        """Show ``labels``' folder; ``start`` autosaving (and reloading) it if not yet."""
        self._labels, self._image = labels, image
        saver = None
        if labels is not None:
            saver = autosave(labels, image, self._session) if start else autosaver_for(labels)
        self.edit.setText(str(saver.store.folder) if saver else "")

    def use(self) -> None:
        """Autosave to the typed folder: this session's edits go there, saved ones come back."""
        folder = self.edit.text().strip()
        if self._labels is None or not folder:
            self._say("Choose a labels layer and type a folder first.")
            return
        saver = autosave(self._labels, self._image, self._session, Path(folder))
        if saver is None:
            self._say("Another layer already autosaves to that folder.")
            return
        restored = saver.retarget(Path(folder))
        self._say(f"Autosaving to {saver.store.folder}; reloaded slice(s) {restored or 'none'}.")

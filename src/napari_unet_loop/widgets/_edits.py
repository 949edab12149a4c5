"""Which slices of a segmentation the user corrected, and which pixels they painted.

The tracker turns a Labels layer's events into the session's state (edited slices and painted
masks live in ``app.session.LoopSession``, so every widget sees the same).

Brush, fill and polygon strokes reach us as the Labels layer's ``paint`` events; replacing the
whole array (``layer.data = ...``) as a ``data`` event, diffed against the previous array.
Writes by the plugin itself (Segment, re-segmenting after Retrain) happen inside
:func:`programmatic_update` and are not corrections. Undo/redo emit no event, so an undone
stroke still counts as edited.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from ..app.errors import InputError

if TYPE_CHECKING:
    from napari.layers import Labels

    from ..app.session import LoopSession

_PROGRAMMATIC: dict[int, int] = {}  # id(layer) -> nesting depth of programmatic_update
_TRACKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Labels -> EditTracker


@contextmanager
def programmatic_update(layer: Labels) -> Iterator[None]:
    """Inside this block, changes to ``layer`` are the plugin's own writes, not user edits."""
    key = id(layer)
    _PROGRAMMATIC[key] = _PROGRAMMATIC.get(key, 0) + 1
    try:
        yield
    finally:
        _PROGRAMMATIC[key] -= 1
        if not _PROGRAMMATIC[key]:
            del _PROGRAMMATIC[key]


def write_slices(layer: Labels, planes: Mapping[int, np.ndarray]) -> None:
    """Write label planes ``{z: (Y,X)}`` into ``layer`` as a programmatic (non-edit) update."""
    with programmatic_update(layer):
        for z, plane in planes.items():
            if layer.ndim == 2:
                layer.data[...] = plane
            else:
                layer.data[z] = plane
        layer.data = layer.data  # emits the data event, so views such as metrics refresh


def _atom_pieces(atom, ndim: int) -> Iterator[tuple[int, tuple, object]]:
    """(slice z, (Y,X) index, painted mask or True) for one napari paint history atom."""
    if hasattr(atom, "slice_key"):  # napari >= 0.9: bounding box + mask (None = whole box)
        key, mask = atom.slice_key, atom.mask
        if ndim == 2:
            yield 0, key, True if mask is None else mask
            return
        for i, z in enumerate(range(key[0].start, key[0].stop)):
            yield z, key[1:], True if mask is None else mask[i]
        return
    indices = tuple(np.asarray(i) for i in atom[0])  # data_setitem: fancy indices
    if ndim == 2:
        yield 0, indices, True
        return
    for z in np.unique(indices[0]):
        at = indices[0] == z
        yield int(z), (indices[1][at], indices[2][at]), True


class EditTracker:
    """Reports the strokes painted on one Labels layer to the session."""

    def __init__(self, layer: Labels, session: LoopSession) -> None:
        if layer.ndim not in (2, 3):
            raise InputError(f"'{layer.name}': only 2D or Z×Y×X labels can be corrected")
        self._layer = weakref.ref(layer)
        self.session = session
        self.name = layer.name
        self._data = layer.data
        layer.events.paint.connect(self._on_paint)
        layer.events.data.connect(self._on_data)
        layer.events.name.connect(self._on_name)

    @property
    def layer(self) -> Labels | None:
        return self._layer()

    def painted_mask(self, z: int) -> np.ndarray:
        """Boolean (Y,X) mask of the pixels painted on slice ``z`` (all False if none)."""
        mask = self.session.painted_mask(self.name, z)
        return np.zeros(self._data.shape[-2:], bool) if mask is None else mask

    def painted(self) -> dict[int, np.ndarray]:
        """Copies of the painted masks of every edited slice."""
        return self.session.painted(self.name)

    def _record(self, pieces) -> None:
        strokes: dict[int, np.ndarray] = {}
        for z, index, mask in pieces:
            target = strokes.setdefault(z, np.zeros(self._data.shape[-2:], bool))
            target[index] |= mask
        if strokes:
            self.session.paint(self.name, strokes)

    def _on_paint(self, event) -> None:
        if id(self.layer) in _PROGRAMMATIC:
            return
        ndim = self._data.ndim
        self._record(piece for atom in event.value for piece in _atom_pieces(atom, ndim))

    def _on_data(self, event) -> None:
        layer = self.layer
        old, new = self._data, layer.data
        self._data = new
        if new is old:
            return
        if old.shape != new.shape:  # another image's segmentation: old edits no longer apply
            self.session.clear_edits(self.name)
            return
        if id(layer) in _PROGRAMMATIC:
            return
        if isinstance(old, np.ndarray) and isinstance(new, np.ndarray):
            changed = np.asarray(old != new).reshape((-1, *new.shape[-2:]))
            full = (slice(None), slice(None))
            self._record((z, full, plane) for z, plane in enumerate(changed) if plane.any())

    def _on_name(self, event) -> None:
        self.session.rename_layer(self.name, self.layer.name)
        self.name = self.layer.name


def track_edits(layer: Labels, session: LoopSession) -> EditTracker:
    """Start (or keep) tracking the user's edits of ``layer``; safe to call repeatedly."""
    tracker = _TRACKERS.get(layer)
    if tracker is None:
        tracker = _TRACKERS[layer] = EditTracker(layer, session)
    return tracker


def tracker_for(layer: Labels) -> EditTracker | None:
    return _TRACKERS.get(layer)


def forget(layer: Labels) -> EditTracker | None:
    """Stop tracking ``layer`` (it left the viewer); returns its tracker if it had one."""
    return _TRACKERS.pop(layer, None)

"""What the correction loop remembers for one viewer: model versions, edited slices and the
pixels painted on them, and the mean Dice of each version.

Plain Python (no Qt, no napari import) so widgets share one state object instead of
stashing it on themselves, and tests can drive it directly. Changes are announced on
``session.events`` (psygnal signals): views connect to them and are disconnected when they go.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal, SignalGroup

from .round_history import RoundHistory

if TYPE_CHECKING:
    from ..core.model.modelfile import Model
    from .curve import Curve

DEFAULT_MODEL = "em-membranes"


@dataclass
class ModelVersion:
    """One entry of the model history: the model and why it exists."""

    model: Model
    label: str
    created: float = field(default_factory=time.time)
    curve: Curve | None = None  # how a Retrain round trained it (None: not trained here)


class LoopEvents(SignalGroup):
    """The session's signals; ``events.all`` fires on any of them."""

    versions = Signal()  # a model version was added, or another one made current
    edits = Signal(str)  # the edited slices of this labels layer changed
    painted = Signal(str, object)  # the user painted on this layer: the set of slices touched
    scores = Signal()  # a model version was scored against a ground truth


class LoopSession:
    """Model history (step back to any version), the slices the user edited and the pixels
    painted on them (per labels layer, by name), and the mean Dice of every version."""

    def __init__(self) -> None:
        self.events = LoopEvents()
        self.versions: list[ModelVersion] = []
        self.current_index: int = -1
        self.previous_index: int = -1  # current before the last switch: what A/B compares
        self.scores = RoundHistory()  # mean Dice per version, per ground truth
        self._edited: dict[str, set[int]] = {}
        self._painted: dict[str, dict[int, np.ndarray]] = {}  # layer -> slice -> (Y,X) bool

    # model history
    @property
    def model(self) -> Model | None:
        """The model Segment and Retrain use now, or None before one is chosen."""
        return self.versions[self.current_index].model if self.versions else None

    @property
    def current(self) -> ModelVersion | None:
        return self.versions[self.current_index] if self.versions else None

    def push_model(
        self, model: Model, label: str, *, current: bool = True, curve: Curve | None = None
    ) -> ModelVersion:
        """Add ``model`` to the history; make it current unless ``current`` is False (a round
        the guard did not adopt stays listed, to be chosen by hand). Nothing is ever dropped."""
        version = ModelVersion(model, label, curve=curve)
        self.versions.append(version)
        if current or self.current_index < 0:
            self.previous_index, self.current_index = self.current_index, len(self.versions) - 1
        self.events.versions.emit()
        return version

    def select_version(self, index: int) -> None:
        """Step back (or forward) to a recorded version without losing the others."""
        if not 0 <= index < len(self.versions):
            raise IndexError(f"no model version {index}")
        if index != self.current_index:
            self.previous_index, self.current_index = self.current_index, index
        self.events.versions.emit()

    @property
    def previous(self) -> ModelVersion | None:
        """The version that was current before the last switch (None before any)."""
        return self.versions[self.previous_index] if self.previous_index >= 0 else None

    # edited slices and painted pixels
    def paint(self, layer: str, strokes: Mapping[int, np.ndarray]) -> None:
        """The user painted ``strokes`` (``{z: (Y,X) bool mask}``) on ``layer``."""
        self._add_paint(layer, strokes)
        self.events.painted.emit(layer, set(strokes))

    def restore(self, layer: str, masks: Mapping[int, np.ndarray]) -> None:
        """Slices edited in an earlier session, with their painted masks (autosave reload)."""
        self._add_paint(layer, masks)

    def _add_paint(self, layer: str, masks: Mapping[int, np.ndarray]) -> None:
        painted = self._painted.setdefault(layer, {})
        for z, mask in masks.items():
            z, mask = int(z), np.asarray(mask, bool)
            if z in painted:
                painted[z] |= mask  # in place: a brush drag sends many strokes
            else:
                painted[z] = mask.copy()
        edited = self._edited.setdefault(layer, set())
        if not edited.issuperset(painted):
            edited.update(painted)
            self.events.edits.emit(layer)

    def edited_slices(self, layer: str) -> list[int]:
        return sorted(self._edited.get(layer, ()))

    def painted_mask(self, layer: str, z: int) -> np.ndarray | None:
        """A copy of the pixels painted on slice ``z`` of ``layer`` (None if none)."""
        mask = self._painted.get(layer, {}).get(int(z))
        return None if mask is None else mask.copy()

    def painted(self, layer: str) -> dict[int, np.ndarray]:
        """Copies of the painted masks of every edited slice of ``layer``."""
        return {z: mask.copy() for z, mask in self._painted.get(layer, {}).items()}

    def clear_edits(self, layer: str) -> None:
        self._painted.pop(layer, None)
        if self._edited.pop(layer, None):
            self.events.edits.emit(layer)

    def rename_layer(self, old: str, new: str) -> None:
        if old in self._painted:
            self._painted[new] = self._painted.pop(old)
        if old in self._edited:
            self._edited[new] = self._edited.pop(old)
            self.events.edits.emit(old)
            self.events.edits.emit(new)

    # scores
    def record_score(self, truth: str, version: int, mean_dice: dict[str, float]) -> None:
        """Remember the mean Dice of model version ``version`` against ground truth ``truth``."""
        self.scores.record(truth, version, self.versions[version].label, mean_dice)
        self.events.scores.emit()


_SESSIONS: dict[int, LoopSession] = {}


def _unwrapped(viewer: object) -> object:
    # napari gives plugin widgets a proxy of the viewer (a new one per widget): the viewer
    # behind it is what identifies the session.
    return getattr(viewer, "__wrapped__", viewer)


def session_for(viewer: object) -> LoopSession:
    """The one session of ``viewer``, created on first use and dropped when it is collected."""
    viewer = _unwrapped(viewer)
    key = id(viewer)
    if key not in _SESSIONS:
        _SESSIONS[key] = LoopSession()
        try:
            weakref.finalize(viewer, _SESSIONS.pop, key, None)
        except TypeError:
            pass  # objects without weak references keep their session until forget_session
    return _SESSIONS[key]


def forget_session(viewer: object) -> None:
    """Drop a closed viewer's session."""
    _SESSIONS.pop(id(_unwrapped(viewer)), None)

"""What the correction loop remembers for one viewer: model versions and edited slices.

Plain Python (no Qt, no napari import) so widgets share one state object instead of
stashing it on themselves, and tests can drive it directly.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.model.modelfile import Model

DEFAULT_MODEL = "em-membranes"


@dataclass
class ModelVersion:
    """One entry of the model history: the model and why it exists."""

    model: Model
    label: str
    created: float = field(default_factory=time.time)


class LoopSession:
    """Model history (step back to any version) and the slices the user edited, per layer."""

    def __init__(self) -> None:
        self.versions: list[ModelVersion] = []
        self.current_index: int = -1
        self._edited: dict[str, set[int]] = {}
        self._listeners: list = []

    # model history
    @property
    def model(self) -> Model | None:
        """The model Segment and Retrain use now, or None before one is chosen."""
        return self.versions[self.current_index].model if self.versions else None

    def push_model(self, model: Model, label: str, *, current: bool = True) -> ModelVersion:
        """Add ``model`` to the history; make it current unless ``current`` is False (a round
        the guard did not adopt stays listed, to be chosen by hand). Nothing is ever dropped."""
        version = ModelVersion(model, label)
        self.versions.append(version)
        if current or self.current_index < 0:
            self.current_index = len(self.versions) - 1
        self._notify()
        return version

    def select_version(self, index: int) -> None:
        """Step back (or forward) to a recorded version without losing the others."""
        if not 0 <= index < len(self.versions):
            raise IndexError(f"no model version {index}")
        self.current_index = index
        self._notify()

    # edited slices
    def mark_edited(self, layer_name: str, slices: set[int] | list[int]) -> None:
        self._edited.setdefault(layer_name, set()).update(int(z) for z in slices)
        self._notify()

    def edited_slices(self, layer_name: str) -> list[int]:
        return sorted(self._edited.get(layer_name, ()))

    def clear_edits(self, layer_name: str) -> None:
        self._edited.pop(layer_name, None)
        self._notify()

    def rename_layer(self, old: str, new: str) -> None:
        if old in self._edited:
            self._edited[new] = self._edited.pop(old)
            self._notify()

    # change notification, so several widgets can show the same state
    def subscribe(self, callback) -> None:
        self._listeners.append(callback)

    def unsubscribe(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()


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

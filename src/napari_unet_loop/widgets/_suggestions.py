"""The "correct next" list: unedited slices to correct next; a click shows the slice.

Segment stores each slice's mean uncertainty and descriptor in the labels layer's metadata
(``uncertainty``, ``descriptors``); the ranking itself is
``core.inference.uncertainty.rank_slices``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QLabel, QListWidget, QVBoxLayout, QWidget

from ..app.correct_next import correct_next
from ._layers import META_KEY

if TYPE_CHECKING:
    from napari.layers import Labels
    from napari.viewer import Viewer

    from ..app.session import LoopSession

SHOWN = 5


def slice_scores(labels: Labels | None) -> dict[int, float]:
    """The per-slice mean uncertainty Segment stored for ``labels`` (empty if none)."""
    if labels is None:
        return {}
    stored = (labels.metadata.get(META_KEY) or {}).get("uncertainty") or {}
    return {int(z): float(score) for z, score in stored.items()}


def slice_descriptors(labels: Labels | None) -> dict[int, object]:
    """The per-slice descriptors Segment stored for ``labels`` (empty if none)."""
    if labels is None:
        return {}
    stored = (labels.metadata.get(META_KEY) or {}).get("descriptors") or {}
    return {int(z): descriptor for z, descriptor in stored.items()}


class Suggestions(QWidget):
    """Up to ``SHOWN`` slices to correct next, for the chosen labels layer."""

    def __init__(self, viewer: Viewer, session: LoopSession) -> None:
        super().__init__()
        self._viewer, self._session = viewer, session
        self._labels: Labels | None = None
        self.title = QLabel(
            "Correct next (unsure unedited slices, each standing for others; click to show)"
        )
        self.title.setWordWrap(True)
        self.list = QListWidget()
        self.list.setMaximumHeight(6 * self.list.fontMetrics().height() + 8)
        self.list.itemClicked.connect(self._show)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.list)
        self.refresh()

    def follow(self, labels: Labels | None) -> None:
        self._labels = labels
        self.refresh()

    def ranked(self) -> list:
        labels = self._labels
        if labels is None:
            return []
        edited = self._session.edited_slices(labels.name)
        return correct_next(slice_scores(labels), edited, SHOWN, slice_descriptors(labels))

    def refresh(self) -> None:
        self.list.clear()
        ranked = self.ranked()
        for suggestion in ranked:
            self.list.addItem(suggestion.describe())
        self.setVisible(bool(ranked) or self._labels is None)

    def _show(self, item) -> None:
        ranked = self.ranked()
        row = self.list.row(item)
        if self._labels is None or self._labels.ndim != 3 or not 0 <= row < len(ranked):
            return
        world = self._labels.data_to_world((ranked[row].z, 0, 0))
        self._viewer.dims.set_point(self._viewer.dims.ndim - 3, world[0])

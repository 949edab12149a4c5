"""The "U-Net Loop" panel: the loop's four steps in order, as tabs, under a "next step" hint.

Each tab hosts the step's own dock widget (also in the Plugins menu on its own). A tab's widget
is built the first time the tab is shown: docking the panel then costs one widget, not four.
The tab of the next step is marked with "▸"; the hint above the tabs says what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from napari.layers import Image, Labels
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from ..app.next_step import BATCH, CORRECT, MEASURE, SEGMENT, LoopState, NextStep, next_step
from ..app.session import session_for
from ..app.truth import Candidate, is_truth_like, pick_truth
from ._layers import META_KEY, real_viewer, viewer_alive
from ._signals import connect_while_alive

if TYPE_CHECKING:
    from napari.viewer import Viewer


def _factories() -> dict[str, Callable[[Viewer], QWidget]]:
    from .batch_widget import BatchWidget
    from .metrics_widget import MetricsWidget
    from .retrain_widget import RetrainWidget
    from .segment_widget import SegmentWidget

    return {
        SEGMENT: SegmentWidget,
        CORRECT: RetrainWidget,
        MEASURE: MetricsWidget,
        BATCH: BatchWidget,
    }


def loop_state(viewer: Viewer, session) -> LoopState:
    """The facts the next step depends on, read from the viewer's layers and the session."""
    layers = list(viewer.layers)
    segs = [
        x
        for x in layers
        if isinstance(x, Labels)
        and META_KEY in x.metadata
        and not x.metadata[META_KEY].get("compare")
    ]  # A/B's layer is no new result
    seg = segs[-1] if segs else None
    truth = None
    if seg is not None:
        candidates = [
            Candidate(x.name, x.data, isinstance(x, Labels))
            for x in layers
            if isinstance(x, (Labels, Image))
            and META_KEY not in x.metadata
            and not getattr(x, "rgb", False)
            and not x.multiscale
        ]
        name = pick_truth(candidates, tuple(seg.data.shape))
        truth = next((c.name for c in candidates if c.name == name and is_truth_like(c)), None)
    return LoopState(
        has_image=any(isinstance(x, Image) for x in layers),
        segmentation=None if seg is None else seg.name,
        edited=0 if seg is None else len(session.edited_slices(seg.name)),
        truth=truth,
        retrained=any(v.label.startswith("retrain") for v in session.versions),
    )


class LoopPanel(QWidget):
    """Segment, Correct & Retrain, Measure and Batch as tabs, and what to do next."""

    def __init__(self, napari_viewer: Viewer) -> None:
        super().__init__()
        self._viewer = real_viewer(napari_viewer)
        self._session = session_for(self._viewer)
        self._factories = _factories()
        self._sections: dict[str, QWidget] = {}
        self.step: NextStep | None = None
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("font-weight: bold; padding: 4px;")
        self.tabs = QTabWidget()
        self.tabs.tabBar().setExpanding(False)
        for name in self._factories:
            holder = QScrollArea()
            holder.setWidgetResizable(True)
            holder.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.tabs.addTab(holder, name.replace("&", "&&"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.hint)
        layout.addWidget(self.tabs)
        self.tabs.currentChanged.connect(lambda i: self.section(list(self._factories)[i]))
        self.section(SEGMENT)
        events = self._viewer.layers.events
        for event in (events.inserted, events.removed):
            event.connect(self.refresh_hint)
        session = self._session.events
        connect_while_alive(self, self.refresh_hint, session.edits, session.versions)
        self.refresh_hint()

    def _index(self, name: str) -> int:
        return list(self._factories).index(name)

    def section(self, name: str) -> QWidget:
        """The widget of section ``name`` (``SEGMENT``, ``CORRECT``, ``MEASURE``, ``BATCH``)."""
        if name not in self._sections:
            widget = self._factories[name](self._viewer)
            self._sections[name] = widget
            page = QWidget()  # the widget at its natural height, the spare room below it
            layout = QVBoxLayout(page)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(widget)
            layout.addStretch(1)
            self.tabs.widget(self._index(name)).setWidget(page)
        return self._sections[name]

    def show_section(self, name: str) -> QWidget:
        """Bring section ``name`` to the front (building it if needed)."""
        self.tabs.setCurrentIndex(self._index(name))
        return self.section(name)

    def refresh_hint(self, *_: object) -> None:
        if not viewer_alive(self._viewer):
            return
        self.step = next_step(loop_state(self._viewer, self._session))
        self.hint.setText(f"Next: {self.step.text}")
        for i, name in enumerate(self._factories):
            mark = "▸ " if name == self.step.section else ""
            self.tabs.setTabText(i, f"{mark}{name}".replace("&", "&&"))  # "&" is no shortcut

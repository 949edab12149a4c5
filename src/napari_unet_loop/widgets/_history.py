"""The session's model versions as a list to step back through, and "Save model…".

A ``.zip`` name saves a bioimage.io package instead of a model file; that export traces the
network and writes test tensors, so it runs in a worker thread.

One click on a version makes it the current model; ``switched`` then tells the Retrain widget,
which re-segments the unedited slices with it in the background.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..app.errors import UnetLoopError
from ..app.models import export_model, save_model
from ._signals import connect_while_alive

if TYPE_CHECKING:
    from ..app.session import LoopSession


class ModelHistory(QWidget):
    """Lists every model version (● marks the current one); click one to use it again."""

    switched = Signal()  # the user made another version current

    def __init__(self, session: LoopSession, say: Callable[[str], None]) -> None:
        super().__init__()
        self._session, self._say = session, say
        self.history = QListWidget()
        self.history.setToolTip("Click a version to make it the current model.")
        # a few rows are enough: the list scrolls, and the dock has more to show
        self.history.setMaximumHeight(5 * self.history.fontMetrics().height() + 12)
        self.history.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.save_edit, self.save_button = QLineEdit(), QPushButton("Save model…")
        self.save_edit.setPlaceholderText(
            "model file (.safetensors) or bioimage.io package (.zip); empty: choose in a dialog"
        )
        save = QHBoxLayout()
        save.addWidget(self.save_edit)
        save.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("model history (click a version to use it)"))
        layout.addWidget(self.history)
        layout.addLayout(save)
        self.history.itemClicked.connect(lambda _: self.use_selected())
        self.save_button.clicked.connect(self.save)
        connect_while_alive(self, self.refresh, session.events.versions)
        self.refresh()

    def refresh(self) -> None:
        self.history.clear()
        for i, version in enumerate(self._session.versions):
            mark = "● " if i == self._session.current_index else "   "
            self.history.addItem(f"{mark}{i}: {version.label}")

    def use_selected(self) -> None:
        """Make the selected version the current model (the later ones stay listed)."""
        row = self.history.currentRow()
        if row < 0:
            self._say("Select a model version in the history first.")
            return
        if row == self._session.current_index:
            return
        self._session.select_version(row)
        self.history.setCurrentRow(row)
        self._say(f"Model is now '{self._session.versions[row].label}'.")
        self.switched.emit()

    def save(self) -> None:
        """Save the current model to the path field (or one chosen in a dialog): a model file,
        or a bioimage.io package for a ``.zip`` name."""
        if self._session.model is None:
            self._say("No model to save yet: run Segment or Retrain first.")
            return
        path = self.save_edit.text().strip()
        if not path:
            path, kind = QFileDialog.getSaveFileName(self, "Save model", "", _FILTERS)
            if path and kind == _FILTERS.split(";;")[1] and not path.lower().endswith(".zip"):
                path += ".zip"
        if not path:
            return
        if path.lower().endswith(".zip"):
            self._export(path)
            return
        try:
            self._say(f"Saved model to {save_model(self._session.model, path)}")
        except (OSError, UnetLoopError) as exc:
            self._say(f"Could not save the model: {exc}")

    def _export(self, path: str) -> None:
        from superqt.utils import thread_worker

        def failed(exc: BaseException) -> None:
            text = str(exc) if isinstance(exc, UnetLoopError) else f"{type(exc).__name__}: {exc}"
            self._say(f"Could not save the model: {text}")

        def finished() -> None:
            with contextlib.suppress(RuntimeError):  # the dock was closed meanwhile
                self.save_button.setEnabled(True)

        self.save_button.setEnabled(False)
        self._say(f"Saving a bioimage.io package to {path}…")
        handlers = {
            "returned": lambda out: self._say(f"Saved a bioimage.io package to {out}"),
            "errored": failed,
            "finished": finished,
        }
        # a copy: a retrain started meanwhile must not change the weights being written
        worker = thread_worker(export_model, start_thread=False, connect=handlers)
        self._worker = worker(self._session.model.copy(), path)
        self._worker.start()


_FILTERS = "Model (*.safetensors);;bioimage.io package (*.zip)"

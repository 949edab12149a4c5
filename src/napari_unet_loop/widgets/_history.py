"""The session's model versions as a list to step back through, and "Save model…".

One click on a version makes it the current model; ``switched`` then tells the Retrain widget,
which re-segments the unedited slices with it in the background.
"""

from __future__ import annotations

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

from ..core.errors import UnetLoopError
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
        self.save_edit.setPlaceholderText("model file (.safetensors); empty: choose in a dialog")
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
        """Save the current model to the path field (or one chosen in a dialog)."""
        from ..core.model.modelfile import save_model

        if self._session.model is None:
            self._say("No model to save yet: run Segment or Retrain first.")
            return
        path = (
            self.save_edit.text().strip()
            or QFileDialog.getSaveFileName(self, "Save model", "", "Model (*.safetensors)")[0]
        )
        if not path:
            return
        try:
            self._say(f"Saved model to {save_model(self._session.model, path)}")
        except (OSError, UnetLoopError) as exc:
            self._say(f"Could not save the model: {exc}")

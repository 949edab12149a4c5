"""Model and device choosers shared by the Segment and Batch widgets.

The model is loaded in the worker (it takes time), so the picker hands out a *source* (a
shipped name, a file path, or None for the session's current model) and takes the loaded
model back on the GUI thread to record it in the session's history.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..app.errors import InputError
from ..app.models import shipped_names
from ..app.session import DEFAULT_MODEL
from ..app.warm_up import known_devices, start_torch_import
from ._panel import row
from ._signals import connect_while_alive

if TYPE_CHECKING:
    from ..app.models import Model
    from ..app.session import LoopSession

_CURRENT = "current"
_FILE = "file"


def make_device_combo() -> QComboBox:
    """``auto`` plus the devices this machine really has.

    Finding GPUs needs torch, which takes a second to import: the list starts as ``auto`` and
    ``cpu``, and the GPUs join it once torch has been imported in the background.
    """
    combo = QComboBox()
    combo.addItems(["auto", "cpu"])
    start_torch_import()
    timer = QTimer(combo)  # dies with the combo, so it never touches a deleted widget

    def add_devices() -> None:
        devices = known_devices()
        if devices is None:
            return
        timer.stop()
        for device in devices:
            if combo.findText(device) < 0:
                combo.insertItem(combo.count() - 1, device)  # GPUs before cpu

    timer.timeout.connect(add_devices)
    timer.start(100)
    return combo


def make_precision_combo() -> QComboBox:
    """The arithmetic the network runs in (see ``core.model.precision``), ``auto`` first."""
    combo = QComboBox()
    combo.addItems(["auto", "fp32", "bf16", "fp16"])
    combo.setToolTip(
        "auto: bf16 where this machine runs it faster (timed once), else fp32; fp16 needs a GPU"
    )
    return combo


class ModelPicker(QWidget):
    """The session's current model, a shipped model by name, or a model file.

    The drop-down has a row to itself; the path field and Browse show below it only while
    "model file…" is chosen, so they never squeeze the model names.
    """

    def __init__(self, session: LoopSession) -> None:
        super().__init__()
        self._session = session
        self._loaded: tuple[str, Model] | None = None  # the model this picker last loaded
        self.combo = QComboBox()
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        for name in shipped_names():
            self.combo.addItem(name, name)
        self.combo.addItem("model file…", _FILE)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("path to a .safetensors model or bioimage.io .zip")
        self.path_edit.textEdited.connect(lambda _: self._select(_FILE))
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        self.file_row = row(self.path_edit, self.browse_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.file_row)
        self.combo.currentIndexChanged.connect(self._show_file_row)
        self._select(DEFAULT_MODEL)
        self._show_file_row()
        connect_while_alive(self, self._sync_session, session.events.versions)
        self._sync_session()

    def _show_file_row(self, *_: object) -> None:
        self.file_row.setVisible(self.combo.currentData() == _FILE)

    def _select(self, data: str) -> None:
        index = self.combo.findData(data)
        if index >= 0:
            self.combo.setCurrentIndex(index)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model file", "", "Models (*.safetensors *.zip)"
        )
        if path:
            self.set_file(path)

    def set_file(self, path: str | Path) -> None:
        """Choose the model file at ``path``."""
        self.path_edit.setText(str(path))
        self._select(_FILE)

    def _sync_session(self) -> None:
        """Offer the session's current model; switch to it when it came from elsewhere (Retrain)."""
        versions, index = self._session.versions, self._session.current_index
        current = self.combo.findData(_CURRENT)
        if not versions:
            if current >= 0:
                self.combo.removeItem(current)
            return
        text = f"current: {versions[index].label}"
        if current < 0:
            self.combo.insertItem(0, text, _CURRENT)
        else:
            self.combo.setItemText(current, text)
        if self._loaded is None or self._session.model is not self._loaded[1]:
            self._select(_CURRENT)

    def source(self) -> tuple[str | None, Model | None]:
        """``(source, ready_model)`` for a job; ``ready_model`` is set when no load is needed."""
        data = self.combo.currentData()
        if data == _CURRENT:
            return None, self._session.model
        if data == _FILE:
            text = self.path_edit.text().strip()
            if not text:
                raise InputError("choose a model file first (Browse…)")
            data = text
        if self._loaded is not None and self._loaded[0] == data:
            return data, self._loaded[1]
        return data, None

    def adopt(self, source: str | None, model: Model) -> None:
        """Record a model a job used: a newly picked one becomes the session's current model."""
        if source is None:
            return
        self._loaded = (source, model)
        if self._session.model is not model:
            self._session.push_model(model, f"loaded {Path(source).name}")

"""Batch dock widget: segment TIFF files or a folder to label TIFFs on disk, slice by slice."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
)

from ..app.batch_job import FORMATS, FileDone, FileStarted, batch, input_files, read_output
from ..app.errors import InputError, UnetLoopError
from ..app.models import check_device
from ..app.session import session_for
from ._layers import real_viewer
from ._model_picker import ModelPicker, make_device_combo, make_precision_combo
from ._panel import WorkerPanel, row

if TYPE_CHECKING:
    from napari.viewer import Viewer

    from ..app.models import Model


class BatchWidget(WorkerPanel):
    """Inputs, output folder, model, device → one '<stem>_labels.tif' per input, with Open."""

    def __init__(self, napari_viewer: Viewer) -> None:
        napari_viewer = real_viewer(napari_viewer)
        super().__init__(napari_viewer, "Run")
        self._current = ""  # the file being segmented, named in failure messages
        self.inputs_edit = QLineEdit()
        self.inputs_edit.setPlaceholderText("TIFF files (separated by ;) or a folder")
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("output folder")
        self.model_picker = ModelPicker(session_for(napari_viewer))
        self.device_combo = make_device_combo()
        self.precision_combo = make_precision_combo()
        self.instances_check = QCheckBox("instances (split touching objects)")
        self.format_combo = QComboBox()
        self.format_combo.addItems(FORMATS)
        self.outputs = QListWidget()
        self.outputs.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        # At most its preferred height, so Open stays right under it instead of at the bottom.
        self.outputs.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Add the selected outputs (or all) as Labels layers")
        self.open_button.clicked.connect(self.open_outputs)
        browse = {}
        for key, text, slot in (
            ("files", "Files…", self._browse_files),
            ("folder", "Folder…", self._browse_input_folder),
            ("output", "Folder…", self._browse_output_folder),
        ):
            browse[key] = QPushButton(text)
            browse[key].clicked.connect(slot)

        form = QFormLayout(self)
        form.addRow("inputs", row(self.inputs_edit, browse["files"], browse["folder"]))
        form.addRow("output", row(self.output_edit, browse["output"]))
        form.addRow("model", self.model_picker)
        form.addRow("device", self.device_combo)
        form.addRow("precision", self.precision_combo)
        form.addRow("format", self.format_combo)
        for widget in (
            self.instances_check,
            self.button_row(),
            self.status,
            QLabel("Finished outputs"),
            self.outputs,
            self.open_button,
        ):
            form.addRow(widget)

    def _browse_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "TIFF stacks", "", "TIFF (*.tif *.tiff)")
        if files:
            self.inputs_edit.setText("; ".join(files))

    def _browse_input_folder(self) -> None:
        if folder := QFileDialog.getExistingDirectory(self, "Folder of TIFF stacks"):
            self.inputs_edit.setText(folder)

    def _browse_output_folder(self) -> None:
        if folder := QFileDialog.getExistingDirectory(self, "Output folder"):
            self.output_edit.setText(folder)

    def run(self) -> None:
        """Start the batch (the Run button's slot)."""
        if self.running:
            return
        try:
            files = input_files(self.inputs_edit.text())
            if not self.output_edit.text().strip():
                raise InputError("choose an output folder")
            folder = Path(self.output_edit.text().strip()).expanduser()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create output folder {folder}: {exc.strerror}") from None
            device = self.device_combo.currentText()
            check_device(device)
            source, ready = self.model_picker.source()
        except UnetLoopError as exc:
            self.refuse(str(exc))
            return
        self._current = ""
        self.say(f"Segmenting {len(files)} file(s)…")
        # A cancelled or failed file is discarded by LabelWriter: no half-written output.
        self.start(
            batch,
            files,
            folder,
            source,
            ready,
            device,
            self.instances_check.isChecked(),
            FORMATS[self.format_combo.currentText()],
            self.precision_combo.currentText(),
            description="Batch segment",
            total=lambda item: getattr(item, "total", None),
            step=lambda item: getattr(item, "done", None),
            on_yield=self._yielded,
            on_done=lambda model: self._finished(source, model, len(files)),
            on_error=self._failed,
        )

    def _yielded(self, item: Any) -> None:
        if isinstance(item, FileStarted):
            self._current = item.path.name
            self.say(f"File {item.index + 1}/{item.count}: {item.path.name}")
        elif isinstance(item, FileDone):
            entry = QListWidgetItem(item.output.name)
            entry.setData(Qt.ItemDataRole.UserRole, str(item.output))
            entry.setToolTip(str(item.output))
            self.outputs.addItem(entry)

    def _failed(self, exc: BaseException) -> None:
        self.say(f"Batch failed on {self._current}: {exc}")

    def _finished(self, source: str | None, model: Model, count: int) -> None:
        self.model_picker.adopt(source, model)
        self.say(f"Done: {count} file(s) written.")

    def output_files(self) -> list[Path]:
        """The finished outputs, in the order they were written."""
        items = (self.outputs.item(i) for i in range(self.outputs.count()))
        return [Path(item.data(Qt.ItemDataRole.UserRole)) for item in items]

    def open_outputs(self) -> None:
        """Add the selected outputs (all when none is selected) to the viewer as Labels."""
        selected = self.outputs.selectedItems()
        paths = [Path(item.data(Qt.ItemDataRole.UserRole)) for item in selected]
        for path in paths or self.output_files():
            try:
                opened = read_output(path)
            except (OSError, UnetLoopError) as exc:
                self.refuse(f"Cannot open {path.name}: {exc}")
                continue
            for labels in opened:
                units = (labels.unit,) * len(labels.scale) if labels.unit else None
                self._viewer.add_labels(
                    labels.data, name=labels.name, scale=labels.scale, units=units
                )

"""Dice / IoU dock widget: score a prediction against ground truth, per slice and per round.

Scores are recomputed a moment after either layer changes (painting, Segment, Retrain) and
after every model change; one history row per model version shows what each round of
corrections gained, for the ground truth and class names in use (the rows are the session's:
closing this dock loses none). The stack mean leaves out
edited slices when there are unedited ones (corrected slices equal the truth). Ground truth
may be a Labels or an Image layer; how its values become classes is ``labelmap.class_map``'s rule,
shown in the status line when it applies; two classes that score much better swapped bring a
one-click "Swap classes" proposal.
Scores are computed in a worker: pixel scores of a 30×512×512 stack take a fraction of a
second, but object scores take seconds. One worker at a time: changes during a computation
are scored once it ends. The worker is superqt's, not napari's: napari's ``thread_worker``
registers every worker with the window's task list for good, and with it the arrays it scored
(a re-segmentation of a 30-slice stack then kept ~450 MB per round).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import thread_worker

from ..app.activity import jobs_running
from ..app.errors import UnetLoopError
from ..app.round_history import RoundHistory
from ..app.session import session_for
from ._autosave import watch_viewer
from ._layers import META_KEY, LayerChooser, TruthChooser, real_viewer, viewer_alive
from ._panel import swap_classes_check
from ._signals import connect_while_alive
from ._tables import fill_table, score_table

if TYPE_CHECKING:
    from napari.viewer import Viewer

    from ..app.evaluation import Evaluation
    from ..app.truth import SwapHint

RECOMPUTE_DELAY_MS = 300  # wait for a brush stroke or a re-segmentation to end


class MetricsWidget(QWidget):
    """Per-slice and mean Dice/IoU of a prediction layer against a ground-truth layer."""

    def __init__(self, napari_viewer: Viewer) -> None:
        super().__init__()
        napari_viewer = real_viewer(napari_viewer)
        self._viewer, self._session = napari_viewer, session_for(napari_viewer)
        watch_viewer(napari_viewer)  # edited slices are left out of the mean
        self._watched: list = []
        self._worker = None
        self._again = False
        self.evaluation: Evaluation | None = None
        self._history_rows: list[list[str]] = []  # the history table's rows
        self.pred_combo = LayerChooser(napari_viewer, Labels)
        self.truth_combo = TruthChooser(napari_viewer, self.pred_combo)
        self.instances_check = QCheckBox("instance labels (object F1)")
        self.invert_check = swap_classes_check()
        self.swap_hint, self.swap_button = QLabel(), QPushButton("Swap classes")
        self.swap_hint.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.table, self.history_table = score_table(), score_table()
        self.csv_edit, self.export_button = QLineEdit(), QPushButton("Export CSV")
        self.csv_edit.setPlaceholderText("CSV file; empty: choose in a dialog")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RECOMPUTE_DELAY_MS)
        self._timer.timeout.connect(self._due)

        form = QFormLayout()
        form.addRow("prediction", self.pred_combo)
        form.addRow("ground truth", self.truth_combo)
        export = QHBoxLayout()
        export.addWidget(self.csv_edit)
        export.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for widget in (
            self.instances_check,
            self.invert_check,
            self.swap_hint,
            self.swap_button,
            self.status,
            self.table,
            QLabel("mean Dice per round of corrections"),
            self.history_table,
        ):
            layout.addWidget(widget)
        layout.addLayout(export)

        for combo in (self.pred_combo, self.truth_combo):
            combo.currentTextChanged.connect(self._rewatch)
        for check in (self.instances_check, self.invert_check):
            check.toggled.connect(self.schedule)
        self.export_button.clicked.connect(self.export_csv)
        self.swap_button.clicked.connect(self.invert_check.toggle)
        self._propose_swap(None)
        napari_viewer.layers.events.inserted.connect(self._choose_layers)
        events = self._session.events
        connect_while_alive(self, self.schedule, events.edits, events.versions)
        self._choose_layers()
        self._rewatch()

    def _choose_layers(self, *_: object) -> None:
        """Prefer Segment's result as prediction and a truth-like other layer as ground truth.

        Runs when the widget opens and when a layer is added; a prediction made by Segment
        with a different ground-truth layer is a choice to keep.
        """
        pred = self.pred_combo.layer()
        layers = self._viewer.layers
        made = [x.name for x in layers if isinstance(x, Labels) and META_KEY in x.metadata]
        switched = bool(made) and (pred is None or META_KEY not in pred.metadata)
        if switched:
            self.pred_combo.setCurrentText(made[-1])
        pred, truth = self.pred_combo.layer(), self.truth_combo.layer()
        fits = (
            truth is not None
            and truth is not pred
            and (pred is None or truth.data.shape == pred.data.shape)
        )
        if switched or not fits:
            self.truth_combo.choose()

    def schedule(self, *_: object) -> None:
        """Recompute soon; many changes in a row cost one computation."""
        if viewer_alive(self._viewer):
            self._timer.start()

    def _due(self) -> None:
        """Recompute, or, while a job runs, once it is over: a re-segmentation writes its layer
        every second, and scoring the whole stack each time took the cores from it (29 ISBI
        slices: 21.9 s in the viewer against 9.4 s for the same job outside it)."""
        if jobs_running():
            self._timer.start()
        else:
            self.recompute()

    def _rewatch(self, *_: object) -> None:
        """Listen to the data and paint events of the two chosen layers only."""
        for layer in self._watched:
            layer.events.data.disconnect(self.schedule)
            if isinstance(layer, Labels):
                layer.events.paint.disconnect(self.schedule)
        self._watched = [x for x in (self.pred_combo.layer(), self.truth_combo.layer()) if x]
        for layer in self._watched:
            layer.events.data.connect(self.schedule)
            if isinstance(layer, Labels):
                layer.events.paint.connect(self.schedule)
        self.schedule()

    def _propose_swap(self, hint: SwapHint | None) -> None:
        self.swap_hint.setText(hint.text(self.invert_check.isChecked()) if hint else "")
        self.swap_hint.setVisible(hint is not None)
        self.swap_button.setVisible(hint is not None)

    def _class_names(self, pred: Labels) -> list[str]:
        from ..app.evaluation import class_names

        model = self._session.model
        stored = (pred.metadata.get(META_KEY) or {}).get("classes")
        return class_names(stored, model.class_names if model is not None else None, pred.data)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    @property
    def running(self) -> bool:
        """True while scores are computed or due (a change waits for the debounce timer)."""
        return self._worker is not None or self._timer.isActive()

    def recompute(self) -> None:
        """Score the chosen layers in a worker (one at a time) and then update both tables."""
        from ..app.truth import score

        if not viewer_alive(self._viewer):
            return
        if self._worker is not None:  # ask again when the running computation ends
            self._again = True
            return
        pred, truth = self.pred_combo.layer(), self.truth_combo.layer()
        self.evaluation = None
        if pred is None or truth is None or pred is truth:
            fill_table(self.table, [], [])
            self._propose_swap(None)
            self._say("Choose a prediction (Labels) and a different ground-truth layer.")
            return
        version = self._session.current_index  # -1: no model version yet
        # Copies, so painting during the computation cannot tear the arrays being scored.
        handlers = {
            "returned": lambda result: self._show(*result, version, truth.name),
            "errored": self._failed,
            "finished": self._finished,
        }
        self._worker = thread_worker(score, start_thread=False, connect=handlers)(
            np.array(pred.data),
            np.array(truth.data),
            self._class_names(pred),
            edited=self._session.edited_slices(pred.name),
            invert=self.invert_check.isChecked(),
            instances=self.instances_check.isChecked(),
        )
        self._worker.start()

    def _finished(self) -> None:
        self._worker = None
        if self._again and viewer_alive(self._viewer):
            self._again = False
            self.recompute()

    def _failed(self, exc: BaseException) -> None:
        if viewer_alive(self._viewer):
            fill_table(self.table, [], [])
            self._propose_swap(None)
            message = str(exc) if isinstance(exc, UnetLoopError) else f"{type(exc).__name__}: {exc}"
            self._say(message)

    def _show(self, ev: Evaluation, hint: SwapHint | None, version: int, truth: str) -> None:
        if not viewer_alive(self._viewer):
            return
        self.evaluation = ev
        self._propose_swap(hint)
        # The mean first: the number that matters stays in view above a long stack's rows.
        fill_table(self.table, ev.header, [ev.rows[-1], *ev.rows[:-1]], bold_rows=1)
        means = ", ".join(f"{name} {value:.3f}" for name, value in ev.mean_dice.items())
        note = f" ({ev.note})" if ev.note else ""
        self._say(f"Mean Dice over {len(ev.scored)} unedited slice(s): {means}{note}")
        if version >= 0:
            self._session.record_score(truth, version, ev.mean_dice)
        rows = self._session.scores.rows(truth, list(ev.mean_dice))
        fill_table(self.history_table, RoundHistory.header(list(ev.mean_dice)), rows)
        self._history_rows = rows

    def export_csv(self) -> None:
        """Write the per-slice table, the mean and the round history to a CSV file."""
        from ..app.csv_export import write_csv

        ev = self.evaluation
        if ev is None:
            self._say("Nothing to export yet: choose a prediction and a ground truth.")
            return
        path = (
            self.csv_edit.text().strip()
            or QFileDialog.getSaveFileName(self, "Export metrics", "", "CSV (*.csv)")[0]
        )
        if not path:
            return
        history = [RoundHistory.header(list(ev.mean_dice)), *self._history_rows]
        rows = [ev.header, *ev.rows, [], *history]
        try:
            self._say(f"Exported metrics to {write_csv(path, rows)}")
        except (OSError, UnetLoopError) as exc:
            self._say(f"Could not export: {exc}")

"""Correct and Retrain dock widget: one round of the loop on every slice the user corrected.

A round (``core.training.rounds``) holds back part of the corrections, stops when they stop
improving and is adopted only when it beats the current model on them; a round that does not
is listed in the history but the current model stays. Stop discards the round. After an
adopted round the current slice is re-segmented at once (never an edited slice); the other
unedited slices on request. "Correct next" lists the unedited slices the model is least sure
of.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from napari.layers import Image, Labels
from qtpy.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout

from ..app.errors import UnetLoopError
from ..app.jobs import default_round, retrain, with_iterations
from ..app.progress_text import Throttle
from ..app.session import session_for
from ..app.status_text import RetrainReport
from ..app.warm_up import start_warm_up
from ._autosave import AutosaveFolder, watch_viewer
from ._compare import CompareToggle
from ._curve import CurveChart
from ._edits import track_edits
from ._history import ModelHistory
from ._layers import META_KEY, LayerChooser, current_slice, layer_alive, viewer_alive
from ._model_picker import make_precision_combo
from ._panel import WorkerPanel
from ._resegment import start_resegment
from ._retrain_job import RetrainJob, corrections_text, make_job, others_edited
from ._signals import connect_while_alive
from ._suggestions import Suggestions

if TYPE_CHECKING:
    from napari.viewer import Viewer

    from ..app.jobs import RoundResult, RoundSettings


class RetrainWidget(WorkerPanel):
    """Pick the corrected labels, retrain in a worker, step through and save model versions."""

    def __init__(self, napari_viewer: Viewer) -> None:
        super().__init__(napari_viewer, "Retrain")
        napari_viewer = self._viewer
        self._session = session_for(napari_viewer)
        self._settings: RoundSettings | None = None  # read when first needed: see settings
        self._result: RoundResult | None = None
        self._job: RetrainJob | None = None
        self._report, self._redraw = RetrainReport(), Throttle()
        self._training = False  # False: updates still queued from a stopped round are ignored
        self._stop_note = "Stopped."  # what Stop leaves of the running work
        self.retrain_button, self.stop_button = self.run_button, self.cancel_button
        self.stop_button.setText("Stop")
        watch_viewer(napari_viewer)
        self.labels_combo = LayerChooser(napari_viewer, Labels)
        self.image_combo = LayerChooser(napari_viewer, Image)
        self.autosave = AutosaveFolder(self._session, self._say)
        self.edited_label = QLabel()
        self.edited_label.setWordWrap(True)  # other layers' names must not widen the dock
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["dense", "sparse"])
        self.mode_combo.setToolTip("dense: edited slices are all truth; sparse: painted pixels")
        self.iterations = QSpinBox()
        self.iterations.setRange(0, 100_000)
        self.iterations.setSpecialValueText("auto")  # 0: sized by the corrected area
        self.iterations.setToolTip(
            "auto: more corrections, more iterations; stops early when "
            "the held-back corrections stop improving"
        )
        self.precision_combo = make_precision_combo()
        self.resegment_button = QPushButton("Re-segment all unedited slices")
        self.curve = CurveChart()  # loss and held-back Dice, live and per model version
        self.models = ModelHistory(self._session, self._say)
        self.suggestions = Suggestions(napari_viewer, self._session)
        self.compare = CompareToggle(
            napari_viewer,
            self._session,
            lambda: (self.labels_combo.layer(), self.image_combo.layer()),
            self._say,
        )

        form = QFormLayout()
        form.addRow("corrected labels", self.labels_combo)
        form.addRow("image", self.image_combo)
        form.addRow("autosave folder", self.autosave)
        form.addRow("mode", self.mode_combo)
        form.addRow("iterations", self.iterations)
        form.addRow("precision", self.precision_combo)
        layout = QVBoxLayout(self)
        layout.addWidget(self.edited_label)
        layout.addLayout(form)
        for widget in (
            self.button_row(),
            self.status,
            self.curve,
            self.resegment_button,
            self.suggestions,
            self.models,
            self.compare,
        ):
            layout.addWidget(widget)
        self.labels_combo.currentTextChanged.connect(self._labels_chosen)
        self.resegment_button.clicked.connect(lambda: self.resegment_unedited())
        self.models.history.currentRowChanged.connect(self._show_curve)
        self.models.switched.connect(self._version_switched)
        layers = napari_viewer.layers.events  # another segmentation or its image comes or goes
        connect_while_alive(self, self._refresh, self._session.events.edits)
        connect_while_alive(self, self._refresh, layers.inserted, layers.removed)
        self._labels_chosen()
        self.idle_only(self.resegment_button, self.compare)
        self._warm_up = start_warm_up()

    @property
    def settings(self) -> RoundSettings:
        """What a round runs (the iterations field may fix them). ``core.training.rounds`` imports
        torch, seconds on first use: it is read at the first Retrain, not as the dock opens."""
        if self._settings is None:
            self._settings = default_round()
        return self._settings

    @settings.setter
    def settings(self, value: RoundSettings) -> None:
        self._settings = value

    @property
    def warming_up(self) -> bool:
        """True while torch prepares for the first Retrain of this process."""
        return self._warm_up.is_alive()

    def _say(self, text: str) -> None:
        if viewer_alive(self._viewer):
            self.say(text)

    def _labels_chosen(self, *_: object) -> None:
        """Follow the chosen labels layer: its image, autosave folder and edited slices.

        Only Segment's layers autosave (and reload) by themselves; for any other layer that
        waits for "Use folder", so saved corrections never overwrite e.g. a ground truth.
        """
        labels = self.labels_combo.layer()
        known_image = False
        if labels is not None and labels.ndim in (2, 3):
            track_edits(labels, self._session)
            image = (labels.metadata.get(META_KEY) or {}).get("image_layer")
            known_image = image in self._viewer.layers
            if known_image:
                self.image_combo.setCurrentText(image)
        self.autosave.follow(labels, self.image_combo.layer(), start=known_image)
        self.suggestions.follow(labels)
        self._refresh()

    def _refresh(self) -> None:
        if not viewer_alive(self._viewer):
            return
        labels = self.labels_combo.layer()
        edited = self._session.edited_slices(labels.name) if labels is not None else []
        self.suggestions.refresh()
        text = (
            f"Edited slices: {', '.join(map(str, edited))}"
            if edited
            else "Edited slices: none yet (paint corrections with the brush)"
        )
        others = [] if labels is None else others_edited(self._session, self._viewer.layers, labels)
        if others:
            text += f"; also corrected: {', '.join(others)}"
        self.edited_label.setText(text)

    def run(self) -> None:
        """Start retraining on the edited slices (the Retrain button)."""
        if self.running:
            return
        settings = replace(self.settings, precision=self.precision_combo.currentText())
        if self.iterations.value():
            settings = with_iterations(settings, self.iterations.value())
        try:
            self._job = make_job(
                self._session,
                self.labels_combo.layer(),
                self.image_combo.layer(),
                sparse=self.mode_combo.currentText() == "sparse",
                settings=settings,
                layers=self._viewer.layers,
            )
        except UnetLoopError as exc:
            self.refuse(str(exc))
            return
        self._say(f"Retraining on {corrections_text(self._job)}…")
        self._training, self._stop_note = True, "Stopped: the model is unchanged."
        self._report, self._redraw = RetrainReport(), Throttle()
        self.curve.start()
        self.start(
            retrain,
            *self._job.args,
            description="Retrain",
            total=lambda u: getattr(u, "total", None),
            step=lambda u: getattr(u, "iteration", None),
            on_yield=self._progress,
            on_abort=self._stopped,
            on_finish=self._training_finished,
            uses=(self._job.labels, self._job.image),
        )

    retrain = run

    def _progress(self, item) -> None:
        if not self._training:
            return
        if hasattr(item, "adopted"):  # the round's result comes last
            self._result = item
        else:
            text = self._report.add(item)  # every update counts; the label shows a few a second
            self.curve.add(item)
            if self._redraw.due(final=item.iteration >= item.total):
                self._say(text)
                self.curve.refresh()  # in the same turn: one window repaint for both

    def _training_finished(self) -> None:
        # Adopt only once the training worker is over, so re-segmenting can start a new one.
        result, self._result, self._training = self._result, None, False
        self.curve.refresh()
        if result is not None:
            self._adopt(result)

    def _adopt(self, result: RoundResult) -> None:
        job = self._job
        rounds = 1 + sum(v.label.startswith("retrain") for v in self._session.versions)
        label = f"retrain {rounds}: {corrections_text(job)} ({job.mode})"
        summary = self._report.summary(result)
        if not result.adopted:
            self._session.push_model(
                result.model, f"{label}, not adopted", current=False, curve=self.curve.live
            )
            self._say(f"Retrain {rounds}: {summary}. It is in the history if you want it.")
            return
        self._session.push_model(result.model, label, curve=self.curve.live)
        done = f"New model: retrain {rounds} ({summary})."
        labels = job.labels
        if not layer_alive(self._viewer, labels):
            self._say(done)
            return
        z = current_slice(self._viewer, labels) if labels.ndim == 3 else 0
        if z in self._session.edited_slices(labels.name):
            self._say(f"{done} Slice {z} is corrected: kept as painted.")
            return
        self._resegment(labels, job.image, [z], before=f"{done} ")

    def _show_curve(self, row: int) -> None:
        if 0 <= row < len(self._session.versions):
            self.curve.show_curve(self._session.versions[row].curve)

    def cancel(self) -> None:
        """Stop retraining; the partly trained model is discarded (the Stop button)."""
        if self.running:
            super().cancel()
            self._training = False
            self._stopped()

    stop = cancel

    def _layer_removed(self, event) -> None:
        if self.running and any(event.value is x for x in self._uses):
            super()._layer_removed(event)
            self._training = False
            self._stopped()

    def _stopped(self) -> None:
        """What a stop leaves: said at once, and again when the worker ends."""
        removed = [x.name for x in self._uses if not layer_alive(self._viewer, x)]
        if removed:
            self._say(f"Stopped: '{removed[0]}' was removed.")
        else:
            self._say(self._stop_note)

    def _version_switched(self) -> None:
        """One click in the history: the chosen version re-segments the unedited slices."""
        if not self.running:
            self.resegment_unedited(before=f"{self.status.text()} ")

    def resegment_unedited(self, before: str = "") -> None:
        """Predict every unedited slice of the chosen labels with the current model, the
        slice on show first."""
        labels, image = self.labels_combo.layer(), self.image_combo.layer()
        if labels is None or image is None or self._session.model is None:
            self._say("Choose labels and image layers, and have a model (run Segment).")
            return
        edited = set(self._session.edited_slices(labels.name))
        count = labels.data.shape[0] if labels.ndim == 3 else 1
        shown = current_slice(self._viewer, labels) if labels.ndim == 3 else 0
        slices = sorted((z for z in range(count) if z not in edited), key=lambda z: z != shown)
        if not slices:
            self._say("Every slice is corrected: nothing to re-segment.")
            return
        self._resegment(labels, image, slices, before=before)

    def _resegment(self, labels: Labels, image: Image, slices: list[int], before: str = "") -> None:
        self._stop_note = "Stopped."
        start_resegment(
            self,
            self._viewer,
            self._session,
            labels,
            image,
            slices,
            say=self._say,
            on_abort=self._stopped,
            before=before,
        )

"""Segment dock widget: run a model over an image layer into a Labels layer, off the GUI thread.

Objects are brought to the scale the model was trained at (``core.inference.scale``: the object
diameter the user gives, or measured on the image) and the result mapped back. The model's
uncertainty is kept as a layer and, per slice, in the labels' metadata for "correct next".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout

from ..app.errors import InputError, UnetLoopError
from ..app.models import check_device
from ..app.segment_job import SegmentRequest, SegmentResult, segment
from ..app.segment_report import one_class_warning, scope_text
from ..app.session import session_for
from ._autosave import watch_viewer
from ._edits import programmatic_update, track_edits
from ._layers import (
    META_KEY,
    LayerChooser,
    class_features,
    current_slice,
    get_layer,
    layer_alive,
    numbered_names,
    probability_name,
    real_viewer,
    segmentation_name,
    spatial_shape,
    uncertainty_name,
)
from ._model_picker import ModelPicker, make_device_combo, make_precision_combo
from ._notify import notify
from ._panel import WorkerPanel

if TYPE_CHECKING:
    from napari.viewer import Viewer


WHOLE_STACK = "whole stack"
CURRENT_SLICE = "current slice"
# Shown choice → the model's polarity (core.model.normalize).
CONTRASTS = {"auto": "auto", "as is": "keep", "inverted": "invert"}


class SegmentWidget(WorkerPanel):
    """Choose an image, a model and a device; Segment writes '<image> segmentation'."""

    def __init__(self, napari_viewer: Viewer) -> None:
        napari_viewer = real_viewer(napari_viewer)
        super().__init__(napari_viewer, "Segment")
        self._session = session_for(napari_viewer)
        # corrections painted into a new segmentation are autosaved even with no Retrain open
        watch_viewer(napari_viewer)
        self.image_combo = LayerChooser(napari_viewer, Image)
        self.model_picker = ModelPicker(self._session)
        self.device_combo = make_device_combo()
        self.precision_combo = make_precision_combo()
        self.scope_combo = QComboBox()
        self.scope_combo.addItems([WHOLE_STACK, CURRENT_SLICE])
        self.instances_check = QCheckBox("instances (split touching objects)")
        self.probabilities_check = QCheckBox("probabilities (foreground layer)")
        self.uncertainty_check = QCheckBox("uncertainty (where to correct next)")
        self.uncertainty_check.setChecked(True)
        self.diameter = QDoubleSpinBox()
        self.diameter.setRange(0.0, 10_000.0)
        self.diameter.setDecimals(1)
        self.diameter.setSuffix(" px")
        self.diameter.setSpecialValueText("auto")  # 0: measured on the image
        self.contrast_combo = QComboBox()
        self.contrast_combo.addItems(list(CONTRASTS))
        self.contrast_combo.setToolTip(
            "auto: invert a grey image whose background is the other kind than the model's "
            "training images (bright vs dark); as is / inverted: fixed. Retrain and saved "
            "models keep the choice."
        )
        self.diameter.setToolTip(
            "Typical object diameter in pixels; the image is rescaled so objects match the "
            "model's training scale. auto: measured on the image (rescales objects 2× or more "
            "off the model's scale)."
        )

        form = QFormLayout(self)
        form.addRow("image", self.image_combo)
        form.addRow("model", self.model_picker)
        form.addRow("device", self.device_combo)
        form.addRow("precision", self.precision_combo)
        form.addRow("scope", self.scope_combo)
        form.addRow("object diameter", self.diameter)
        form.addRow("contrast", self.contrast_combo)
        for widget in (
            self.instances_check,
            self.probabilities_check,
            self.uncertainty_check,
            self.button_row(),
        ):
            form.addRow(widget)
        form.addRow(self.status)

    def _request(self) -> SegmentRequest:
        """Read and check the fields; raises UnetLoopError with a message for the user."""
        image = self.image_combo.layer()
        if image is None:
            raise InputError("no image layer selected: open an image or a sample first")
        shape = spatial_shape(image)
        device = self.device_combo.currentText()
        check_device(device)
        z = None
        if self.scope_combo.currentText() == CURRENT_SLICE and len(shape) == 3:
            z = current_slice(self._viewer, image)
        source, ready = self.model_picker.source()
        return SegmentRequest(
            image,
            shape,
            image.rgb,
            z,
            source,
            ready,
            device,
            self.instances_check.isChecked(),
            self.probabilities_check.isChecked(),
            self.diameter.value() or None,
            self.uncertainty_check.isChecked(),
            self.precision_combo.currentText(),
            CONTRASTS[self.contrast_combo.currentText()],
        )

    def run(self) -> None:
        """Start segmenting (the Segment button's slot)."""
        if self.running:
            return
        try:
            request = self._request()
        except UnetLoopError as exc:
            self.refuse(str(exc))
            return
        data = request.image.data
        if request.z is not None:
            data = data[request.z : request.z + 1]
        self.say(f"Segmenting {request.image.name} ({scope_text(request.shape, request.z)})…")
        result = SegmentResult()
        self.start(
            segment,
            request,
            data,
            result,
            description=f"Segment {request.image.name}",
            total=lambda event: event.total,
            step=lambda event: event.done,
            on_done=lambda result: self._finished(request, result),
            on_abort=lambda: self._cancelled(request, result),
            uses=(request.image,),
        )

    def _cancelled(self, request: SegmentRequest, result: SegmentResult) -> None:
        """Keep the slices segmented before Cancel."""
        if not layer_alive(self._viewer, request.image):
            self.say(f"Stopped: '{request.image.name}' was removed.")
        elif not result.planes:
            self.say("Cancelled before a slice was done: nothing changed.")
        else:
            self._finished(request, result)
            self.say(f"Cancelled: kept the {len(result.planes)} slice(s) already segmented.")

    def _finished(self, request: SegmentRequest, result: SegmentResult) -> None:
        self.model_picker.adopt(request.source, result.model)
        if not layer_alive(self._viewer, request.image):
            self.say(f"'{request.image.name}' was removed while segmenting: result dropped.")
            return
        layer = self._write_labels(request, result)
        if result.foreground is not None:
            self._write_map(request, result.foreground, probability_name)
        if result.uncertainty is not None:
            self._write_map(request, result.uncertainty, uncertainty_name)
        warning = one_class_warning(result.labels, result.model.class_names)
        scale = "" if result.scale == 1.0 else f", objects rescaled ×{result.scale:.2f}"
        inverted = ""
        if result.inverted:
            why = " to match its training images" if request.contrast == "auto" else ""
            inverted = f", contrast inverted{why}"
        done = f"Done: '{layer.name}' ({result.model.name}{scale}{inverted})."
        self.say(f"{done}{' ' + warning if warning else ''}")
        if warning:
            notify(self._viewer, show_warning, warning)

    def _target(self, request: SegmentRequest) -> tuple[str, Labels | None]:
        """The labels layer to (re)use, skipping layers whose corrections this run would hit."""
        if len(request.shape) == 2:
            slices = {0}
        else:
            slices = set(range(request.shape[0])) if request.z is None else {request.z}
        skipped: dict[str, list[int]] = {}
        for name in numbered_names(segmentation_name(request.image.name)):
            layer = get_layer(self._viewer, name, Labels)
            if layer is not None and layer.data.shape == request.shape:
                edited = sorted(set(self._session.edited_slices(name)) & slices)
                if edited:
                    skipped[name] = edited
                    continue
            elif name in self._viewer.layers:
                continue  # another kind or shape of layer owns this name
            if skipped:
                first, edited = next(iter(skipped.items()))
                notify(
                    self._viewer,
                    show_info,
                    f"'{first}' has your corrections on slice(s) {edited}: the new "
                    f"segmentation went to '{name}' instead of overwriting them.",
                )
            return name, layer
        raise RuntimeError("numbered_names is endless")

    def _write_labels(self, request: SegmentRequest, result: SegmentResult) -> Labels:
        name, layer = self._target(request)
        values = result.labels
        if request.z is None and values.size == np.prod(request.shape):
            data = values.reshape(request.shape)
        else:
            existing = np.asarray(layer.data) if layer is not None else None
            dtype = values.dtype if existing is None else np.result_type(existing, values)
            if existing is None:
                data = np.zeros(request.shape, dtype)
            else:
                data = existing.astype(dtype, copy=False)
            start = request.z or 0  # a cancelled whole-stack run: the first slices
            data[start : start + len(values)] = values
        metadata = {
            "image_layer": request.image.name,
            "model": result.model.name,
            "classes": list(result.model.class_names),
            "instances": bool(request.instances),  # ids, not classes: no round trains on them
            "scale": result.scale,
            "uncertainty": dict(result.scores),
            "descriptors": dict(result.descriptors),
        }
        # Class values are named under the cursor; instance ids are not classes.
        features = {} if request.instances else class_features(result.model.class_names)
        if layer is not None:
            previous = layer.metadata.get(META_KEY) or {}
            for key in ("uncertainty", "descriptors"):
                metadata[key] = {**(previous.get(key) or {}), **metadata[key]}
            layer.metadata[META_KEY] = metadata
            with programmatic_update(layer):  # the plugin's write, not the user's correction
                layer.data = data
            layer.features = features
            return layer
        layer = self._viewer.add_labels(
            data,
            name=name,
            scale=request.image.scale,
            units=request.image.units,
            translate=request.image.translate,
            metadata={META_KEY: metadata},
            features=features,
        )
        track_edits(layer, self._session)
        return layer

    def _write_map(self, request: SegmentRequest, values: np.ndarray, naming) -> None:
        """A 0..1 map per slice as an Image layer (foreground probability, uncertainty)."""
        name = naming(request.image.name)
        layer = get_layer(self._viewer, name, Image)
        if request.z is None and values.size == np.prod(request.shape):
            data = values.reshape(request.shape)
        else:
            if layer is not None and layer.data.shape == request.shape:
                data = np.asarray(layer.data, dtype=values.dtype)
            else:
                data = np.zeros(request.shape, values.dtype)
            start = request.z or 0
            data[start : start + len(values)] = values
        if layer is not None:
            layer.data = data
            return
        added = self._viewer.add_image(
            data,
            name=name,
            scale=request.image.scale,
            units=request.image.units,
            translate=request.image.translate,
            colormap="magma",
            contrast_limits=(0.0, 1.0),
            opacity=0.6,
        )
        # Just above the image, so the segmentation stays on top of the map.
        layers = self._viewer.layers
        if request.image in layers:
            layers.move(layers.index(added), layers.index(request.image) + 1)

"""A/B: the previous model's segmentation of the current slice against the current one.

Pressing the button (or Shift-B in the viewer) predicts the slice with the version that was
current before the last switch, in a worker, into '<labels> (previous model)', and shows that
layer in place of the labels; pressing again shows the current segmentation. Slices already
predicted for a version are shown at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import QPushButton

from ..app.jobs import PredictedSlice, predict_slices
from ._edits import write_slices
from ._layers import META_KEY, current_slice, get_layer, layer_alive, object_scale, viewer_alive
from ._worker import start_worker

if TYPE_CHECKING:
    from napari.layers import Image, Labels
    from napari.viewer import Viewer

    from ..app.session import LoopSession

KEY = "Shift-B"


def compare_name(labels_name: str) -> str:
    return f"{labels_name} (previous model)"


class CompareToggle(QPushButton):
    """Checked: the previous model's result is shown; unchecked: the current one."""

    def __init__(
        self,
        viewer: Viewer,
        session: LoopSession,
        layers: Callable[[], tuple[Labels | None, Image | None]],
        say: Callable[[str], None],
    ) -> None:
        super().__init__(f"A/B: previous model ({KEY})")
        self.setCheckable(True)
        self.setToolTip(
            "Show the previous model version's segmentation of this slice instead "
            "of the current one; press again to go back."
        )
        self._viewer, self._session, self._layers, self._say = viewer, session, layers, say
        self._done: set[tuple[int, int]] = set()  # (id of the model, slice) already shown
        self._worker = None
        self.toggled.connect(self._toggled)
        viewer.bind_key(KEY, self._key, overwrite=True)
        self.destroyed.connect(lambda: viewer.bind_key(KEY, None, overwrite=True))

    def _key(self, _viewer: Viewer) -> None:
        if viewer_alive(self._viewer) and self.isEnabled():
            self.toggle()

    def _toggled(self, on: bool) -> None:
        labels, image = self._layers()
        previous = self._session.previous
        if labels is None or image is None:
            self._say("A/B: choose the labels and image layers first.")
            return self._back(labels)
        if previous is None:
            self._say("A/B: there is no previous model version yet (Retrain, or pick one).")
            return self._back(labels)
        if not on:
            return self._show(labels, False)
        z = current_slice(self._viewer, labels) if labels.ndim == 3 else 0
        if (id(previous.model), z) in self._done:
            return self._show(labels, True)
        if self._worker is not None:
            return
        target = self._target(labels)
        self._say(f"A/B: segmenting slice {z} with '{previous.label}'…")

        def write(item: PredictedSlice) -> None:
            if layer_alive(self._viewer, target):
                write_slices(target, {item.z: item.labels})
                self._done.add((id(previous.model), item.z))
                if self.isChecked():
                    self._show(labels, True)

        self._worker = start_worker(
            predict_slices,
            image.data,
            previous.model,
            [z],
            rgb=image.rgb,
            stack=labels.ndim == 3,
            scale=object_scale(labels),
            description="A/B",
            viewer=self._viewer,
            on_yield=write,
            on_finish=lambda: setattr(self, "_worker", None),
        )

    def _target(self, labels: Labels) -> Labels:
        """The comparison layer, (re)made empty when the labels' shape changed."""
        name = compare_name(labels.name)
        layer = get_layer(self._viewer, name)
        if layer is not None and layer.data.shape == labels.data.shape:
            return layer
        if layer is not None:
            self._viewer.layers.remove(layer)
        self._done.clear()
        # Marked as a prediction (META_KEY), so it is never offered as ground truth.
        return self._viewer.add_labels(
            np.zeros(labels.data.shape, labels.data.dtype),
            name=name,
            scale=labels.scale,
            units=labels.units,
            translate=labels.translate,
            visible=False,
            opacity=labels.opacity,
            metadata={META_KEY: {"compare": True}},
        )

    def _show(self, labels: Labels, previous: bool) -> None:
        layer = get_layer(self._viewer, compare_name(labels.name))
        labels.visible = not previous or layer is None
        if layer is not None:
            layer.visible = previous
        version = (
            self._session.previous
            if previous
            else self._session.versions[self._session.current_index]
        )
        self._say(
            f"{'B' if previous else 'A'}: '{version.label}'"
            + (" (previous model); press again for the current one." if previous else ".")
        )

    def _back(self, labels: Labels | None) -> None:
        """Unchecked again, the current segmentation on show."""
        self.blockSignals(True)
        self.setChecked(False)
        self.blockSignals(False)
        if labels is not None:
            labels.visible = True
            if (layer := get_layer(self._viewer, compare_name(labels.name))) is not None:
                layer.visible = False

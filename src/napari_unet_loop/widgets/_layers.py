"""Layer lookup, naming and liveness checks shared by the dock widgets.

Widgets refer to layers by name (what the user sees) and check that a layer still belongs to
the viewer before touching it, because the user can remove or rename layers, or close the
viewer, while a worker runs.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from functools import partial
from itertools import count
from typing import TYPE_CHECKING

from napari.layers import Image, Labels, Layer
from qtpy.QtWidgets import QComboBox

from ..app.errors import InputError
from ..app.truth import Candidate, is_truth_like, pick_truth

if TYPE_CHECKING:
    from napari.viewer import Viewer

# Key of the dict in ``labels.metadata`` that records which image and model made a layer.
META_KEY = "unet_loop"


def segmentation_name(image_name: str) -> str:
    """The name Segment gives the labels layer of ``image_name``."""
    return f"{image_name} segmentation"


def probability_name(image_name: str) -> str:
    """The name Segment gives the foreground-probability layer of ``image_name``."""
    return f"{image_name} probability"


def uncertainty_name(image_name: str) -> str:
    """Layer name for Segment's uncertainty map of an image."""
    return f"{image_name} uncertainty"


def class_features(class_names: list[str]) -> dict[str, list]:
    """Labels-layer features that name each class value: napari shows the name under the cursor."""
    return {"index": list(range(len(class_names))), "class": list(class_names)}


def numbered_names(base: str) -> Iterator[str]:
    """``base``, ``base (2)``, ``base (3)``, ... (napari's own style for duplicates)."""
    yield base
    for n in count(2):
        yield f"{base} ({n})"


def get_layer(viewer: Viewer, name: str, kind: type[Layer] = Layer) -> Layer | None:
    """The layer called ``name`` if it exists and is a ``kind``, else None."""
    layer = viewer.layers[name] if name in viewer.layers else None
    return layer if isinstance(layer, kind) else None


_SEEN: weakref.WeakSet = weakref.WeakSet()  # viewers real_viewer has seen
_CLOSED: weakref.WeakSet = weakref.WeakSet()  # ... whose window Qt has destroyed since


def real_viewer(viewer: Viewer) -> Viewer:
    """The napari Viewer itself, and from now on :func:`viewer_alive` follows its window.

    napari hands a widget opened from the Plugins menu a ``PublicOnlyProxy`` of the viewer: a
    new wrapper per widget (so it cannot key a per-viewer session), whose layers come wrapped
    too (so ``is`` never matches a layer the plugin created). Widgets unwrap it once, here.
    """
    viewer = getattr(viewer, "__wrapped__", viewer)
    if viewer not in _SEEN:
        _SEEN.add(viewer)
        # The menu bar is a child of the main window, so Qt destroys it with the window: a
        # public signal for "this viewer is gone", where the window object itself is private.
        menu = getattr(getattr(viewer, "window", None), "main_menu", None)
        if menu is not None:
            menu.destroyed.connect(partial(_closed, weakref.ref(viewer)))
    return viewer


def _closed(ref: weakref.ref, *_: object) -> None:
    viewer = ref()
    if viewer is not None:
        _CLOSED.add(viewer)


def viewer_alive(viewer: Viewer) -> bool:
    """False once the window of ``viewer`` (seen by :func:`real_viewer`) has been destroyed.

    Viewer.close() empties the layer list at once and destroys the window a moment later, so
    in between no layer is alive (see :func:`layer_alive`) while the widgets still are. It
    also drops the viewer from napari's list of open viewers at once: checked too, so a worker
    result arriving in between is not shown (in the next viewer, for a notification).
    """
    instances = getattr(type(viewer), "_instances", None)
    return viewer not in _CLOSED and (instances is None or viewer in instances)


def layer_alive(viewer: Viewer, layer: Layer) -> bool:
    """True if the viewer is open and ``layer`` (this very object) is still in it."""
    return viewer_alive(viewer) and any(item is layer for item in viewer.layers)


def object_scale(labels: Layer) -> float:
    """The factor Segment resized the image by for the network when it made ``labels``
    (``core.inference.scale``); Retrain, re-segmenting and A/B predict at it too."""
    return float((labels.metadata.get(META_KEY) or {}).get("scale", 1.0))


def spatial_shape(layer: Image) -> tuple[int, ...]:
    """Shape without the colour axis; raises InputError for what Segment cannot take."""
    if layer.multiscale:
        raise InputError(f"'{layer.name}' is multiscale: open a single-resolution image")
    shape = tuple(layer.data.shape[:-1] if layer.rgb else layer.data.shape)
    if len(shape) not in (2, 3):
        raise InputError(
            f"'{layer.name}' has {len(shape)} dimensions: segment a 2D image, a Z×Y×X stack "
            "or an RGB image (split channels or time points first)"
        )
    return shape


def current_slice(viewer: Viewer, layer: Layer) -> int:
    """Index along the first axis of ``layer`` (a stack) at the viewer's current position."""
    z = layer.world_to_data(viewer.dims.point)[0]
    return int(min(max(round(z), 0), layer.data.shape[0] - 1))


class LayerChooser(QComboBox):
    """A combo box of the viewer's layers of one type that follows adds, removals and renames."""

    def __init__(self, viewer: Viewer, kind: type[Layer] = Image) -> None:
        super().__init__()
        self._viewer = viewer
        self._kind = kind
        events = viewer.layers.events
        for emitter in (events.inserted, events.removed, events.renamed, events.reordered):
            emitter.connect(self.refresh)
        self.refresh()

    def refresh(self, event: object = None) -> None:
        """Re-list the layers, keeping the current choice when it still exists."""
        previous = self.currentText()
        names = [layer.name for layer in self._viewer.layers if isinstance(layer, self._kind)]
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        active = self._viewer.layers.selection.active
        if previous in names:
            self.setCurrentText(previous)
        elif active is not None and active.name in names:
            self.setCurrentText(active.name)
        self.blockSignals(False)
        if self.currentText() != previous:
            self.currentTextChanged.emit(self.currentText())

    def layer(self) -> Layer | None:
        """The chosen layer, or None when there is none."""
        return get_layer(self._viewer, self.currentText(), self._kind)


class TruthChooser(LayerChooser):
    """The ground-truth combo: Labels or Image layers, not the prediction in ``prediction``.

    :meth:`choose` picks the likeliest truth of the prediction's shape; a layer that looks like
    ground truth (labels with classes, or an integer image with a few values) is chosen as
    soon as it is added, so opening the truth after segmenting needs no second step.
    """

    def __init__(self, viewer: Viewer, prediction: LayerChooser) -> None:
        super().__init__(viewer, (Labels, Image))
        self._prediction = prediction
        viewer.layers.events.inserted.connect(self._added)

    def _candidates(self) -> list[Candidate]:
        pred = self._prediction.layer()
        return [
            Candidate(layer.name, layer.data, isinstance(layer, Labels))
            for layer in self._viewer.layers
            if isinstance(layer, (Labels, Image))
            and layer is not pred
            and not getattr(layer, "rgb", False)
            and not layer.multiscale
            and META_KEY not in layer.metadata  # Segment's results are predictions
        ]

    def _shape(self) -> tuple[int, ...] | None:
        pred = self._prediction.layer()
        return None if pred is None else tuple(pred.data.shape)

    def choose(self) -> None:
        """Choose the likeliest ground truth for the current prediction (if there is one)."""
        if (name := pick_truth(self._candidates(), self._shape())) is not None:
            self.setCurrentText(name)

    def _added(self, event) -> None:
        new = next((c for c in self._candidates() if c.name == event.value.name), None)
        shape = self._shape()
        if new and (shape is None or tuple(new.data.shape) == shape) and is_truth_like(new):
            self.setCurrentText(new.name)

"""A viewer set up for the correction loop: image, ground truth, segmentation, tiny model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from napari_unet_loop.app.session import session_for
from napari_unet_loop.core.model.modelfile import new_model
from napari_unet_loop.core.synthetic import make_membrane_stack
from napari_unet_loop.widgets.retrain_widget import RetrainWidget

SHAPE = (3, 64, 64)
CLASSES = ["background", "membrane"]
SEG = "em segmentation"


def sure_prediction(shape: tuple[int, ...], value: int):
    """What ``core.inference.predict`` returns for a model sure of class ``value`` everywhere."""
    from napari_unet_loop.core.inference.predict import Prediction

    probabilities = np.zeros((value + 1, *shape), np.float32)
    probabilities[value] = 1.0
    return Prediction(probabilities, np.full(shape, value, np.uint8))


def tiny_model():
    return new_model(CLASSES, depth=2, base_channels=4, name="tiny")


def loop_viewer(make_napari_viewer, segmentation: np.ndarray | None = None, model=True):
    """Layers 'em' (image), 'em truth' and 'em segmentation' (zeros unless given)."""
    viewer = make_napari_viewer()
    image, truth = make_membrane_stack(SHAPE, seed=0)
    viewer.add_image(image, name="em")
    viewer.add_labels(truth, name="em truth")
    seg = np.zeros(SHAPE, np.uint8) if segmentation is None else segmentation
    viewer.add_labels(
        seg,
        name=SEG,
        metadata={"unet_loop": {"image_layer": "em", "model": "tiny", "classes": CLASSES}},
    )
    if model:
        session_for(viewer).push_model(tiny_model(), "tiny")
    return viewer


def correct_slice(layer, z: int, truth: np.ndarray) -> None:
    """Paint slice ``z`` to the truth the way a user edit arrives (one history item)."""
    ys, xs = np.nonzero(layer.data[z] != truth[z])
    zs = np.full(ys.shape, z)
    layer.data_setitem((zs, ys, xs), truth[z][ys, xs])


# A fake round does not really train: margin -1 lets the guard adopt it.
FAST = {"patch_size": 64, "batch_size": 4, "learning_rate": 1e-2, "margin": -1.0}


def retrain_widget(viewer, iterations=30, **settings) -> RetrainWidget:
    widget = RetrainWidget(viewer)
    widget.labels_combo.setCurrentText(SEG)
    widget.settings = replace(widget.settings, **{**FAST, **settings})
    widget.iterations.setValue(iterations)
    return widget

"""Retrain's "validate on" picks a ground truth opened after segmenting (walkthrough defect 2)."""

from __future__ import annotations

import numpy as np
from _loop_setup import CLASSES, SEG, SHAPE

from napari_unet_loop.core.synthetic import make_membrane_stack
from napari_unet_loop.widgets.retrain_widget import RetrainWidget


def test_validate_on_follows_a_ground_truth_opened_later(make_napari_viewer):
    viewer = make_napari_viewer()
    image, truth = make_membrane_stack(SHAPE, seed=0)
    viewer.add_image(image, name="em")
    viewer.add_labels(truth, name=SEG, metadata={"unet_loop": {"image_layer": "em",
                                                             "classes": CLASSES}})
    widget = RetrainWidget(viewer)
    widget.labels_combo.setCurrentText(SEG)
    assert widget.gt_combo.currentText() == "em"
    viewer.add_image(np.where(truth == 1, 0, 255).astype(np.uint8), name="train-labels")
    assert widget.gt_combo.currentText() == "train-labels"
    viewer.add_image(image[:2], name="wrong shape labels")
    assert widget.gt_combo.currentText() == "train-labels"

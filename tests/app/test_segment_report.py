"""Segment's status lines: the scope of a run and a result of one class."""

from __future__ import annotations

import numpy as np

from napari_unet_loop.app.segment_report import one_class_warning, scope_text


def test_scope_text():
    assert scope_text((64, 64), None) == "whole image"
    assert scope_text((30, 64, 64), None) == "all 30 slices"
    assert scope_text((30, 64, 64), 4) == "slice 4"


def test_one_class_warning():
    names = ["background", "membrane"]
    assert one_class_warning(np.zeros((2, 8, 8), np.uint8), names) == (
        "Every pixel is background: the model may not suit this image."
    )
    assert one_class_warning(np.ones((8, 8), np.uint8), names).startswith("Every pixel is membrane")
    seven = np.full((8, 8), 7, np.uint16)
    assert one_class_warning(seven, names).startswith("Every pixel is label 7")
    assert one_class_warning(np.eye(8, dtype=np.uint8), names) is None

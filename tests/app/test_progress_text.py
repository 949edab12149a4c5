"""Progress bar text: steps done and the time left."""

from __future__ import annotations

from napari_unet_loop.app.progress_text import eta_text


def test_eta_text():
    assert eta_text(0, 30, 0.0) == "0/30"
    assert eta_text(10, 30, 5.0) == "10/30 · about 10 s left"
    assert eta_text(1, 100, 2.0) == "1/100 · about 3 min 18 s left"
    assert eta_text(30, 30, 15.0) == "30/30"

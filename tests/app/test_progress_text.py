"""Progress bar text: steps done and the time left."""

from __future__ import annotations

from napari_unet_loop.app.progress_text import Throttle, eta_text


def test_eta_text():
    assert eta_text(0, 30, 0.0) == "0/30"
    assert eta_text(10, 30, 5.0) == "10/30 · about 10 s left"
    assert eta_text(1, 100, 2.0) == "1/100 · about 3 min 18 s left"
    assert eta_text(30, 30, 15.0) == "30/30"


def test_throttle_lets_a_few_updates_a_second_through():
    now = [0.0]
    throttle = Throttle(per_second=4, clock=lambda: now[0])
    shown = []
    for step in range(1, 101):  # 100 updates over 2 s, the last one final
        now[0] = step * 0.02
        if throttle.due(final=step == 100):
            shown.append(step)
    assert shown[0] == 1 and shown[-1] == 100  # the first and the last are always shown
    assert len(shown) <= 2 * 4 + 2
    assert all(b - a >= 12 for a, b in zip(shown, shown[1:-1], strict=False))  # ≥ 0.25 s apart

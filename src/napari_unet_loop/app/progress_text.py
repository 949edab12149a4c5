"""The text of a progress bar: how far, and how long is left at the pace so far; and how often
to redraw it (no Qt)."""

from __future__ import annotations

import time
from collections.abc import Callable

# Redraws per second at most. The viewer may paint in software on the cores the work runs on,
# and a redraw per training iteration or tile batch competes with the work itself: under
# software OpenGL each one recomposes the whole window (about 20 ms of CPU).
UPDATES_PER_SECOND = 2


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def eta_text(done: int, total: int, elapsed: float) -> str:
    """ "12/30 · about 9 s left"; no estimate before the first step or without a total."""
    if total <= 0:
        return f"{done}"
    if done <= 0 or done >= total:
        return f"{done}/{total}"
    left = elapsed / done * (total - done)
    return f"{done}/{total} · about {_duration(left)} left"


class Throttle:
    """``due()`` is true at most ``per_second`` times a second; the first and a final call
    (``due(final=True)``) are always due, so a display never stops short of the end."""

    def __init__(
        self, per_second: float = UPDATES_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval, self._clock = 1.0 / per_second, clock
        self._last: float | None = None

    def due(self, final: bool = False) -> bool:
        now = self._clock()
        if final or self._last is None or now - self._last >= self._interval:
            self._last = now
            return True
        return False

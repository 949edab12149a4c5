"""The text of a progress bar: how far, and how long is left at the pace so far (no Qt)."""

from __future__ import annotations


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

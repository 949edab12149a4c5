"""How many of the plugin's long jobs run now (no Qt), so background work can wait for none.

The widgets' worker counts each job from start to finish; the warm-up for Retrain waits until
none runs, so it never takes the cores from a Segment the user started meanwhile.
"""

from __future__ import annotations

import threading

_count = 0
_changed = threading.Condition()


def job_started() -> None:
    global _count
    with _changed:
        _count += 1


def job_ended() -> None:
    global _count
    with _changed:
        _count = max(_count - 1, 0)
        _changed.notify_all()


def jobs_running() -> int:
    with _changed:
        return _count


def wait_until_idle(timeout: float | None = None) -> bool:
    """Block until no job runs (True), or ``timeout`` seconds pass (False)."""
    with _changed:
        return _changed.wait_for(lambda: _count == 0, timeout)

"""Torch imported and warmed up in the background, before the first click needs it.

Per process, not per viewer: torch is imported once, and the threads may outlive every viewer.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from .activity import wait_until_idle

IDLE_WAIT_S = 600  # the optimizer waits this long at most for a running job to end
_threads: dict[str, threading.Thread] = {}  # one per job, for the process
_devices: list[str] | None = None  # what import_torch found


def import_torch() -> None:
    """Import torch and find the devices: a second of work, better done before a click."""
    global _devices
    from ..core.model.torch_libraries import preload_torch_libraries

    preload_torch_libraries()  # the slow part of the import, without stalling the GUI thread
    from ..core.model.devices import available_devices  # imports torch

    _devices = available_devices()


def warm_up() -> None:
    """:func:`import_torch`, then build a throwaway optimizer, before the first Retrain.

    torch imports its compiler stack on the first optimizer of a process: seconds of work
    that holds the GIL in stretches long enough to stutter the viewer mid-training. That part
    waits until no job runs (``app.activity``): done during a Segment started right after
    the dock opened, it cost that Segment about a third of its time on 2 cores.
    """
    import_torch()
    import torch

    _wait_for_idle()
    _yield_the_cpu()
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])


def _wait_for_idle() -> None:
    """Until no job runs, ``IDLE_WAIT_S`` at most; at once when Python is exiting (the thread
    is not a daemon, so exit waits for it)."""
    end = time.monotonic() + IDLE_WAIT_S
    while time.monotonic() < end and threading.main_thread().is_alive():
        if wait_until_idle(0.5):
            return


def _yield_the_cpu() -> None:
    """Run this thread at the lowest priority (Linux; elsewhere nothing changes): the warm-up
    is a bet on a later click, and must not slow a Segment started meanwhile."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def known_devices() -> list[str] | None:
    """The devices :func:`import_torch` found (best first), or None while it still runs."""
    return _devices


def _start_once(work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` once per process in a plain thread; returns that thread.

    Not a Qt worker: the thread may outlive the widget and the viewer (napari closed right
    after a widget opened), and a Qt worker then emits signals of deleted objects, which aborts
    Python. Not a daemon either, so quitting waits for it rather than cutting torch off mid-import.
    """
    if work.__name__ not in _threads:
        thread = threading.Thread(target=work, name=f"unet-loop {work.__name__}")
        _threads[work.__name__] = thread
        thread.start()
    return _threads[work.__name__]


def start_torch_import() -> threading.Thread:
    """:func:`import_torch` in the background (Segment and Batch: no optimizer needed)."""
    return _start_once(import_torch)


def start_warm_up() -> threading.Thread:
    """:func:`warm_up` in the background (Retrain)."""
    return _start_once(warm_up)

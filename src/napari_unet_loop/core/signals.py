"""SIGINT and SIGTERM for command-line runs: both stop the run the same way, and can wait.

``install()`` (the CLI calls it) makes SIGINT raise ``KeyboardInterrupt`` and SIGTERM raise
:class:`Terminated` (a ``KeyboardInterrupt``), so every ``with`` block and ``except
BaseException`` cleanup runs on both. Inside ``critical()`` a signal waits until the block
ends: creating a temporary file and recording it, or renaming a finished file into place,
happen whole. Without ``install()`` (in napari) ``critical()`` changes nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as on Ctrl-C."""


_installed = False
_depth = 0
_pending: int | None = None


def _raise_for(signum: int) -> None:
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handler(signum: int, frame) -> None:
    global _pending
    if _depth:
        _pending = signum
        return
    _raise_for(signum)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install() -> list:
    """Handle SIGINT and SIGTERM in this (main) thread as described above; returns the
    handlers they had, for :func:`restore`."""
    global _installed
    previous = [signal.getsignal(s) for s in _SIGNALS]
    for signum in _SIGNALS:
        signal.signal(signum, _handler)
    _installed = True
    return previous


def restore(previous: list | None = None) -> None:
    """Give both signals back their ``previous`` handlers, or ignore them from now on (None:
    the run is over, only the interpreter's exit is left)."""
    global _installed
    for signum, handler in zip(_SIGNALS, previous or [signal.SIG_IGN] * 2, strict=True):
        signal.signal(signum, handler)
    _installed = False


@contextmanager
def critical() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block is done; then raise for one that came meanwhile."""
    global _depth, _pending
    if not _installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        signum, _pending = (_pending, None) if _depth == 0 else (None, _pending)
    if signum is not None:
        _raise_for(signum)

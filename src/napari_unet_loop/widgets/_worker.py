"""Run a core generator off the GUI thread with napari's progress bar, Cancel and error messages.

Core long work is written as generators; each ``yield`` is a place where the worker can stop.
Results reach the widget through ``on_yield``/``on_done`` on the GUI thread. Errors travel as
values into a notification, so they never crash the viewer. Notifications go to the viewer
that started the worker only (``_notify``).

Quitting Python while a worker runs (napari closed mid-run) is safe too: at exit our workers are
asked to stop and every Qt worker thread gets time to end. A worker thread still running once
Python has deleted the Qt objects it signals through raises, and PyQt aborts the process.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from napari.qt.threading import GeneratorWorker, thread_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QThreadPool

from ..app.activity import job_ended, job_started, jobs_running
from ..app.progress_text import Throttle
from ._notify import notify
from ._spinner import NORMAL_SPEED, SLOW_SPEED, set_spinner_speed

if TYPE_CHECKING:
    from napari.viewer import Viewer

EXIT_WAIT_MS = 20_000  # a stopped worker ends within one tile batch or training iteration
_STARTED: weakref.WeakSet = weakref.WeakSet()  # workers start_worker has started


@atexit.register
def _finish_workers_before_exit() -> None:
    for worker in list(_STARTED):
        worker.quit()
    QThreadPool.globalInstance().waitForDone(EXIT_WAIT_MS)


def _message(exc: BaseException) -> str:
    from ..app.errors import UnetLoopError

    if isinstance(exc, UnetLoopError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def start_worker(
    job: Callable[..., Generator[Any, None, Any]],
    *args: Any,
    description: str,
    viewer: Viewer | None = None,
    on_yield: Callable[[Any], None] | None = None,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finish: Callable[[], None] | None = None,
    on_abort: Callable[[], None] | None = None,
    total: Callable[[Any], int | None] | None = None,
    step: Callable[[Any], int | None] | None = None,
    **kwargs: Any,
) -> GeneratorWorker:
    """Start ``job(*args, **kwargs)`` (a generator function) in a thread worker.

    ``total(item)`` and ``step(item)`` read the progress bar's size and position from a yielded
    item (None leaves it alone); the bar is redrawn a few times a second at most (see
    ``progress_text.Throttle``), while ``on_yield`` gets every item. ``on_abort`` runs after a
    cancel, ``on_finish`` after success, error or cancel alike. Notifications go out only while
    ``viewer`` is open and the current one.
    """
    generator = job(*args, **kwargs)

    def run() -> Generator[Any, None, Any]:
        return (yield from generator)

    # ignore_errors: errors arrive as a notification below, not re-raised as a traceback.
    worker = thread_worker(run, start_thread=False, ignore_errors=True)()
    bar = progress(total=0, desc=description)
    redraw = Throttle()

    def yielded(item: Any) -> None:
        if total is not None and (n := total(item)) is not None and n != bar.total:
            bar.total = n
        if step is not None and (n := step(item)) is not None:
            bar.n = n
            if redraw.due(final=n >= (bar.total or 0)):
                bar.refresh()
        if on_yield is not None:
            on_yield(item)

    def errored(exc: BaseException) -> None:
        notify(viewer, show_error, f"{description} failed: {_message(exc)}")
        if on_error is not None:
            on_error(exc)

    def aborted() -> None:
        notify(viewer, show_info, f"{description} cancelled")
        if on_abort is not None:
            on_abort()

    def finished() -> None:
        # A cancelled generator is left suspended; closing it now runs its cleanup (e.g. a
        # LabelWriter removing its temporary file) at once rather than at garbage collection.
        try:
            generator.close()
        finally:  # the job is over even if its cleanup failed
            bar.close()
            job_ended()
            if not jobs_running():
                set_spinner_speed(NORMAL_SPEED)
        if on_finish is not None:
            on_finish()

    worker.yielded.connect(yielded)
    if on_done is not None:
        worker.returned.connect(on_done)
    worker.errored.connect(errored)
    worker.aborted.connect(aborted)
    worker.finished.connect(finished)
    _STARTED.add(worker)
    job_started()
    set_spinner_speed(SLOW_SPEED)
    worker.start()
    return worker

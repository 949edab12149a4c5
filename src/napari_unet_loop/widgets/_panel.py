"""Base of the dock widgets that run one worker at a time (Run and Cancel buttons, a status
line), and small widgets several docks share.

A worker stops when Cancel is pressed or a layer it reads is removed, and the status line then
says so ("Cancelled.", unless the widget's ``on_abort`` says more). A progress bar under the
buttons shows how far the work is and an estimate of the time left.

Handlers of a worker's results run only while the viewer is open: once it is closed the
widget's Qt parts are gone, and a late result is dropped quietly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..app.progress_text import Throttle, eta_text
from ._layers import real_viewer, viewer_alive
from ._worker import start_worker

if TYPE_CHECKING:
    from napari.layers import Layer
    from napari.viewer import Viewer
    from superqt.utils import GeneratorWorker


class WorkerPanel(QWidget):
    """Subclasses build their fields, put :meth:`button_row` and ``status`` in their layout and
    implement :meth:`run`, which calls :meth:`start`."""

    def __init__(self, viewer: Viewer, run_text: str) -> None:
        super().__init__()
        self._viewer = real_viewer(viewer)
        self._worker: GeneratorWorker | None = None
        self._uses: tuple[Layer, ...] = ()  # layers the running worker reads
        self._idle_only: tuple[QWidget, ...] = ()  # enabled only while no worker runs
        self.run_button = QPushButton(run_text)
        self.cancel_button = QPushButton("Cancel")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self._viewer.layers.events.removed.connect(self._layer_removed)
        self._set_running(False)

    def run(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._worker is not None

    def button_row(self) -> QWidget:
        """Run and Cancel side by side, the progress bar under them."""
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(row(self.run_button, self.cancel_button))
        layout.addWidget(self.progress)
        return box

    def idle_only(self, *widgets: QWidget) -> None:
        """Widgets that start work of their own: disabled, as Run is, while a worker runs."""
        self._idle_only += widgets
        self._set_running(self.running)

    def say(self, text: str) -> None:
        self.status.setText(text)

    def refuse(self, text: str) -> None:
        """Bad input: say why in the widget and as a notification; nothing starts."""
        self.say(text)
        show_error(text)

    def start(
        self,
        job: Callable[..., Generator[Any, None, Any]],
        *args: Any,
        description: str,
        on_yield: Callable[[Any], None] | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_abort: Callable[[], None] | None = None,
        on_finish: Callable[[], None] | None = None,
        uses: tuple[Layer, ...] = (),
        **kwargs: Any,
    ) -> None:
        """Run ``job`` in a worker; the handlers run on the GUI thread while the viewer is open.

        Errors are notified by ``start_worker``; ``on_error`` (default: a status line) adds to it.
        ``on_finish`` runs once the panel is idle again (after success, error or cancel), so it
        may start the next worker. Removing one of the layers in ``uses`` stops the worker.
        """

        def failed(exc: BaseException) -> None:
            self.say(f"{description} failed: {exc}")

        total, step, started = kwargs.get("total"), kwargs.get("step"), time.monotonic()
        redraw = Throttle()

        def yielded(item: Any) -> None:
            if total is not None and (n := total(item)) is not None:
                self.progress.setMaximum(max(n, 1))
            n = step(item) if step is not None else None
            if n is not None and redraw.due(final=n >= self.progress.maximum()):
                self.progress.setValue(n)
                elapsed = time.monotonic() - started
                self.progress.setFormat(eta_text(n, self.progress.maximum(), elapsed))
            if on_yield is not None:
                on_yield(item)

        self.progress.setRange(0, 0)  # busy until the first step says how much there is
        self._set_running(True)
        self._uses = uses
        self._worker = start_worker(
            job,
            *args,
            description=description,
            viewer=self._viewer,
            on_yield=self._when_alive(yielded),
            on_done=on_done and self._when_alive(on_done),
            on_error=self._when_alive(on_error or failed),
            on_abort=self._when_alive(on_abort or (lambda: self.say("Cancelled."))),
            on_finish=lambda: self._idle(on_finish),
            **kwargs,
        )

    def cancel(self) -> None:
        """Stop after the tile batch in progress (the Cancel button's slot)."""
        if self._worker is not None:
            self._worker.quit()
            self.say("Cancelling…")

    def _layer_removed(self, event: Any) -> None:
        if self._worker is not None and any(event.value is layer for layer in self._uses):
            self._worker.quit()
            self.say(f"Stopping: '{event.value.name}' was removed.")

    def _when_alive(self, func: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            if viewer_alive(self._viewer):
                func(*args)

        return call

    def _set_running(self, running: bool) -> None:
        for widget in (self.run_button, *self._idle_only):
            widget.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)

    def _idle(self, then: Callable[[], None] | None = None) -> None:
        self._worker, self._uses = None, ()
        if viewer_alive(self._viewer):
            self._set_running(False)
            if then is not None:
                then()


def row(*widgets: QWidget) -> QWidget:
    """Widgets side by side, without margins (for a form row)."""
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return box


def swap_classes_check() -> QCheckBox:
    """The check box for binary ground truth whose high value (255) is the background class."""
    check = QCheckBox("swap classes (ground truth with 255 = background, e.g. ISBI)")
    check.setToolTip(
        "Two-valued ground truth is read low value → first class (background), high value → "
        "second class. Tick this when it is the other way round, as in ISBI 2012, where 255 is "
        "the cell interior and 0 the membrane."
    )
    return check

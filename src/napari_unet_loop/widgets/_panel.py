"""Base of the dock widgets that run one worker at a time (Run and Cancel buttons, a status
line), and small widgets several docks share.

Handlers of a worker's results run only while the viewer is open: once it is closed the
widget's Qt parts are gone, and a late result is dropped quietly.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_error
from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QWidget

from ._layers import real_viewer, viewer_alive
from ._worker import start_worker

if TYPE_CHECKING:
    from napari.viewer import Viewer
    from superqt.utils import GeneratorWorker


class WorkerPanel(QWidget):
    """Subclasses build their fields, put :meth:`button_row` and ``status`` in their layout and
    implement :meth:`run`, which calls :meth:`start`."""

    def __init__(self, viewer: Viewer, run_text: str) -> None:
        super().__init__()
        self._viewer = real_viewer(viewer)
        self._worker: GeneratorWorker | None = None
        self.run_button = QPushButton(run_text)
        self.cancel_button = QPushButton("Cancel")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self._set_running(False)

    def run(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._worker is not None

    def button_row(self) -> QWidget:
        return row(self.run_button, self.cancel_button)

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
        **kwargs: Any,
    ) -> None:
        """Run ``job`` in a worker; the handlers run on the GUI thread while the viewer is open.

        Errors are notified by ``start_worker``; ``on_error`` (default: a status line) adds to it.
        """

        def failed(exc: BaseException) -> None:
            self.say(f"{description} failed: {exc}")

        self._set_running(True)
        self._worker = start_worker(
            job, *args,
            description=description,
            on_yield=on_yield and self._when_alive(on_yield),
            on_done=on_done and self._when_alive(on_done),
            on_error=self._when_alive(on_error or failed),
            on_finish=self._idle,
            **kwargs,
        )

    def cancel(self) -> None:
        """Stop after the tile batch in progress (the Cancel button's slot)."""
        if self._worker is not None:
            self._worker.quit()
            self.say("Cancelling…")

    def _when_alive(self, func: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            if viewer_alive(self._viewer):
                func(*args)

        return call

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _idle(self) -> None:
        self._worker = None
        if viewer_alive(self._viewer):
            self._set_running(False)


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

"""Connect a widget to the session's signals for as long as the widget's Qt side lives.

The connection is dropped when Qt destroys the widget (its viewer closed, ``deleteLater``),
before a later change reaches labels Qt has already deleted. Until then the session holds the
widget: a Python wrapper that outlives its Qt object is safe, while a widget the garbage
collector takes apart (Qt children, closed viewer and all in one cycle) crashed Python in tests.
psygnal would hold a bound method (or a partial of one) weakly, hence the plain function.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psygnal import SignalInstance
    from qtpy.QtCore import QObject


def _disconnect(held: Callable[..., Any], signals: tuple[SignalInstance, ...]) -> None:
    for signal in signals:
        signal.disconnect(held)


def connect_while_alive(owner: QObject, slot: Callable[[], Any], *signals: SignalInstance) -> None:
    """Call ``slot()`` (a method of ``owner`` or of one of its parts) on each of ``signals``."""

    def held(*_: Any) -> None:
        slot()

    for signal in signals:
        signal.connect(held)
    owner.destroyed.connect(partial(_disconnect, held, signals))

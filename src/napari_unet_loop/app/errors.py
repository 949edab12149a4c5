"""The errors a widget turns into a message: raised by the core, shown by the docks."""

from ..core.errors import DeviceUnavailableError, InputError, UnetLoopError

__all__ = ["DeviceUnavailableError", "InputError", "UnetLoopError"]

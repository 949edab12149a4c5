"""Errors a user can cause. Each carries a message fit to show as is."""


class UnetLoopError(Exception):
    """Base class for errors shown to the user as one line."""


class ModelFileError(UnetLoopError):
    """A model file is missing, corrupt, truncated or does not match its metadata."""


class DeviceUnavailableError(UnetLoopError):
    """An explicitly requested device is not available on this machine."""


class DeviceMemoryError(DeviceUnavailableError):
    """The device ran out of memory even with the smallest batch (and tiles) allowed."""


class InputError(UnetLoopError):
    """An input image, label or file is not what the operation needs."""


class Cancelled(UnetLoopError):
    """The user stopped a long operation."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, for wrapping it in a user-facing error."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

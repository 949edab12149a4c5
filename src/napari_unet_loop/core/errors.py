"""Errors a user can cause. Each carries a message fit to show as is."""

import re


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


class TrainingDivergedError(UnetLoopError):
    """Training produced a non-finite loss; no model is made from it."""


class Cancelled(UnetLoopError):
    """The user stopped a long operation."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, for wrapping it in a user-facing error."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_text(text: object, limit: int = 200) -> str:
    """``text`` fit to print on one line: control characters (newlines too) become one space,
    and it is cut to ``limit`` characters. For strings from files, which may be hostile."""
    text = _CONTROL.sub(" ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""The models a user runs: shipped ones by name, model files and bioimage.io packages, loaded,
saved and exported; and the devices they may run on.

Torch is imported on first use, never when a dock opens (``core.model`` imports it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.model.registry import shipped_models

if TYPE_CHECKING:
    from ..core.model.modelfile import Model

__all__ = [
    "check_device",
    "export_model",
    "is_shipped",
    "load_model",
    "load_source",
    "save_model",
    "shipped_names",
]


def shipped_names() -> list[str]:
    """The models bundled with the package, by name."""
    return list(shipped_models())


def is_shipped(name: str) -> bool:
    return name in shipped_models()


def load_model(source: str | os.PathLike) -> Model:
    """A shipped model by name, a model file or a bioimage.io package (slow: imports torch)."""
    from ..core.model.modelfile import load_model as load

    return load(source)


def load_source(source: str | None, ready: Model | None) -> Model:
    """The model to run: ``ready`` if the GUI already has it, else load ``source`` (slow)."""
    return ready if ready is not None else load_model(source)


def save_model(model: Model, path: str | os.PathLike) -> Path:
    """Write ``model`` as a model file, atomically."""
    from ..core.model.modelfile import save_model as save

    return save(model, path)


def export_model(model: Model, path: str | os.PathLike) -> Path:
    """Write ``model`` as a bioimage.io package (a ``.zip``), atomically."""
    from ..core.model.model_zoo import export_model as export

    return export(model, path)


def check_device(name: str) -> None:
    """Raise ``DeviceUnavailableError`` for a device this machine lacks.

    ``auto`` and ``cpu`` always exist; checking them would wait for torch to finish importing.
    """
    if name in ("auto", "cpu"):
        return
    from ..core.model.devices import get_device

    get_device(name)

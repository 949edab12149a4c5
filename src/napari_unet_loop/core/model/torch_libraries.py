"""Load torch's C++ libraries without holding the GIL, before ``import torch`` in a thread.

Importing torch in a background thread still froze the viewer for a second: the dynamic
loader runs libtorch_cpu's static initialisers (every operator registers itself) while
``torch._C`` is imported, and CPython holds the GIL across an extension's dlopen, as it does
across ``ctypes.CDLL``. A foreign call through ctypes releases the GIL, so ``dlopen`` called
that way does the same work while the GUI thread runs on; the import then finds the libraries
loaded. Same libraries, same flags and order as ``torch/__init__.py``. Linux only; anything
unexpected (another layout, a failed dlopen) leaves the work to ``import torch``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

# (library, extra dlopen flags): torch loads its global deps with RTLD_GLOBAL first.
LIBRARIES = (("libtorch_global_deps.so", os.RTLD_GLOBAL), ("libtorch_cpu.so", 0))


def torch_lib_folder() -> Path | None:
    """torch's ``lib`` folder, found without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "lib"


def preload_torch_libraries() -> bool:
    """dlopen torch's C++ libraries with the GIL released; True if it loaded them."""
    folder = torch_lib_folder()
    if not sys.platform.startswith("linux") or "torch" in sys.modules or folder is None:
        return False
    try:
        dlopen = ctypes.CDLL(None).dlopen
    except (OSError, AttributeError):
        return False
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    for name, flags in LIBRARIES:
        path = folder / name
        if not path.is_file() or not dlopen(os.fsencode(path), sys.getdlopenflags() | flags):
            return False
    return True

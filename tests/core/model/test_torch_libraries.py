"""torch's C++ libraries load before torch itself (the import then skips the slow part)."""

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from napari_unet_loop.core.model.torch_libraries import preload_torch_libraries

loaded = preload_torch_libraries()
with open("/proc/self/maps") as maps:
    mapped = "libtorch_cpu.so" in maps.read()
before = "torch" in sys.modules
import torch

print(loaded, mapped, before, float(torch.ones(3).sum()), preload_torch_libraries())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the preload is Linux only")
def test_libraries_load_before_torch_which_then_works():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # Loaded and mapped, torch not imported yet; afterwards torch works and nothing reloads.
    assert out.stdout.split() == ["True", "True", "False", "3.0", "False"]

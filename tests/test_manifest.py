"""napari finds the manifest, it validates, and every python_name imports as napari would."""

import importlib
import shutil
import subprocess

import pytest
from npe2 import PluginManifest


def _manifest() -> PluginManifest:
    return PluginManifest.from_distribution("napari-unet-loop")


def test_manifest_is_found_through_the_entry_point():
    manifest = _manifest()
    assert manifest.name == "napari-unet-loop"
    assert len(manifest.contributions.widgets) == 4


def test_every_python_name_imports():
    for command in _manifest().contributions.commands:
        module_name, _, attr = command.python_name.partition(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attr)), command.python_name


@pytest.mark.skipif(shutil.which("npe2") is None, reason="npe2 command line not on PATH")
def test_npe2_validate_passes():
    out = subprocess.run(
        ["npe2", "validate", "napari-unet-loop"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr

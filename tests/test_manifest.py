"""napari finds the manifest, it validates, and every python_name imports as napari would."""

import importlib
import shutil
import subprocess
import sys

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


def test_the_wheel_carries_the_manifest_and_models(tmp_path):
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(root)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("napari_unet_loop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        manifest = archive.read("napari_unet_loop/napari.yaml").decode()
    assert manifest == (root / "napari.yaml").read_text()
    shipped = {p.name for p in (root / "src/napari_unet_loop/models").glob("*.safetensors")}
    assert {f"napari_unet_loop/models/{name}" for name in shipped} <= names
    entry_points = [n for n in names if n.endswith("entry_points.txt")]
    assert entry_points

"""napari finds the manifest, it validates, and every python_name imports as napari would."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from npe2 import PluginManifest

ROOT = Path(__file__).resolve().parents[1]


def _manifest() -> PluginManifest:
    return PluginManifest.from_distribution("napari-unet-loop")


def test_manifest_is_found_through_the_entry_point():
    manifest = _manifest()
    assert manifest.name == "napari-unet-loop"
    assert len(manifest.contributions.widgets) == 5


def test_menus_place_each_widget_where_napari_users_look():
    menus = {
        menu: [item.command for item in items]
        for menu, items in _manifest().contributions.menus.items()
    }
    assert menus == {
        "napari/layers/segment": ["napari-unet-loop.segment_widget"],
        "napari/layers/annotate": ["napari-unet-loop.retrain_widget"],
        "napari/layers/measure": ["napari-unet-loop.metrics_widget"],
        "napari/file/io_utilities": ["napari-unet-loop.batch_widget"],
    }


def test_package_manifest_is_a_real_file_identical_to_the_top_level_one():
    # The package copy is what npe2 and the wheel read; the top-level one is what people browse.
    root = Path(__file__).resolve().parents[1]
    packaged = root / "src/napari_unet_loop/napari.yaml"
    assert not packaged.is_symlink()
    assert packaged.read_text() == (root / "napari.yaml").read_text()


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
def test_a_clone_without_symlinks_still_has_the_manifest(tmp_path):
    # Windows clones (core.symlinks=false) turn a tracked symlink into a one-line text file.
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-s"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert not [line for line in tracked if line.startswith("120000")]
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    clone = tmp_path / "clone"
    for command in (
        ["git", "-c", "core.symlinks=false", "clone", "-q", "--no-checkout", str(ROOT), str(clone)],
        ["git", "-C", str(clone), "-c", "core.symlinks=false", "checkout", "-q", head],
    ):
        subprocess.run(command, check=True, capture_output=True)
    manifest = PluginManifest.from_file(clone / "src/napari_unet_loop/napari.yaml")
    assert manifest.name == "napari-unet-loop"


def test_every_python_name_imports():
    for command in _manifest().contributions.commands:
        module_name, _, attr = command.python_name.partition(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attr)), command.python_name


@pytest.mark.skipif(shutil.which("npe2") is None, reason="npe2 command line not on PATH")
def test_npe2_validate_passes():
    out = subprocess.run(["npe2", "validate", "napari-unet-loop"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_wheel_carries_the_manifest_and_models(tmp_path):
    import zipfile

    root = ROOT
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(root),
        ],
        capture_output=True,
        text=True,
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


def test_napari_lists_the_widgets_in_its_menus(make_napari_viewer):
    from napari._app_model import get_app_model

    make_napari_viewer()
    menus = get_app_model().menus
    for menu, command in (
        ("napari/layers/segment", "napari-unet-loop.segment_widget"),
        ("napari/layers/annotate", "napari-unet-loop.retrain_widget"),
        ("napari/layers/measure", "napari-unet-loop.metrics_widget"),
        ("napari/file/io_utilities", "napari-unet-loop.batch_widget"),
    ):
        ids = [item.command.id for item in menus.get_menu(menu) if hasattr(item, "command")]
        assert command in ids, menu


def test_readme_images_are_absolute_links_to_files_in_the_repository():
    # A package index page (PyPI, the napari hub) shows the README without the repository
    # beside it: relative image links would be broken there.
    import re

    raw = "https://raw.githubusercontent.com/napari-unet-loop/napari-unet-loop/main/"
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    assert links
    for link in links:
        assert link.startswith(raw), link
        assert (ROOT / link.removeprefix(raw)).is_file(), link

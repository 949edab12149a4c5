"""The compute core and the application layer must import on a machine with no Qt and no napari."""

import subprocess
import sys

BLOCK_GUI = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'qtpy', 'napari', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6',
                                  'magicgui', 'superqt', 'vispy'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import pkgutil, importlib
import napari_unet_loop.core as core
for info in pkgutil.walk_packages(core.__path__, 'napari_unet_loop.core.'):
    importlib.import_module(info.name)
import napari_unet_loop.app as app
for info in pkgutil.walk_packages(app.__path__, 'napari_unet_loop.app.'):
    importlib.import_module(info.name)
import napari_unet_loop.cli
print('ok')
"""

NO_TORCH = """
import sys
import napari_unet_loop._reader, napari_unet_loop._writer, napari_unet_loop._sample_data
import napari_unet_loop.widgets.segment_widget, napari_unet_loop.widgets.retrain_widget
import napari_unet_loop.widgets.metrics_widget, napari_unet_loop.widgets.batch_widget
napari_unet_loop._sample_data.em_membranes_sample()
print('torch' in sys.modules)
"""

# Modules with no network in them: importing them must not cost torch's start-up.
NO_NETWORK = """
import sys
import napari_unet_loop.core.training.augment, napari_unet_loop.core.training.corrections
import napari_unet_loop.core.evaluation.evaluate, napari_unet_loop.core.io.write
import napari_unet_loop.core.inference.postprocess, napari_unet_loop.core.model.registry
print('torch' in sys.modules)
"""


def test_core_imports_without_qt_or_napari():
    out = subprocess.run([sys.executable, "-c", BLOCK_GUI], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_plugin_entry_points_do_not_import_torch():
    out = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_modules_without_a_network_do_not_import_torch():
    out = subprocess.run([sys.executable, "-c", NO_NETWORK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_widgets_reach_the_core_only_through_the_application_layer():
    import ast
    from pathlib import Path

    import napari_unet_loop.widgets as widgets

    offenders = []
    for path in sorted(Path(widgets.__path__[0]).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("..core") or name.startswith("napari_unet_loop.core"):
                    offenders.append(f"{path.name}:{node.lineno} {name}")
    assert offenders == []

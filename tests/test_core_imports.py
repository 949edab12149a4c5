"""The compute core must import on a machine with no Qt and no napari."""

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
for info in pkgutil.iter_modules(core.__path__):
    importlib.import_module('napari_unet_loop.core.' + info.name)
import napari_unet_loop.cli, napari_unet_loop.app.session
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


def test_core_imports_without_qt_or_napari():
    out = subprocess.run([sys.executable, "-c", BLOCK_GUI], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_plugin_entry_points_do_not_import_torch():
    out = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

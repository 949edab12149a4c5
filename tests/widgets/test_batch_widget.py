"""Batch widget: inputs to '<stem>_labels.tif', Open; Cancel and failures leave no file."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt

from napari_unet_loop.core.inference import batch
from napari_unet_loop.core.inference import predict as inference
from napari_unet_loop.core.io.read import read_stack
from napari_unet_loop.widgets.batch_widget import BatchWidget


def _write(path, array):
    tifffile.imwrite(path, array, photometric="minisblack")


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    _write(folder / "a.tif", rng.integers(0, 255, (4, 48, 48), dtype=np.uint8))
    _write(folder / "b.tif", rng.integers(0, 255, (48, 64), dtype=np.uint8))
    return folder


@pytest.fixture
def widget(make_napari_viewer, model_file, tmp_path):
    viewer = make_napari_viewer()
    widget = BatchWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.model_picker.set_file(model_file)
    widget.device_combo.setCurrentText("cpu")
    widget.output_edit.setText(str(tmp_path / "out"))
    return widget


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_folder_to_label_files_and_open(widget, inputs, tmp_path, wait_idle, notes, qtbot):
    widget.inputs_edit.setText(str(inputs))
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert widget.running and not widget.run_button.isEnabled()
    wait_idle(widget)
    out = tmp_path / "out"
    assert _files(out) == ["a_labels.tif", "b_labels.tif"]  # no temporary files left
    with read_stack(out / "a_labels.tif") as stack:
        assert stack.shape == (4, 48, 48) and stack.dtype == np.uint8
    assert read_stack(out / "b_labels.tif").shape == (48, 64)
    assert [p.name for p in widget.output_files()] == ["a_labels.tif", "b_labels.tif"]
    assert notes["error"] == []

    widget.outputs.item(1).setSelected(True)
    widget.open_outputs()
    viewer = widget._viewer
    assert [layer.name for layer in viewer.layers] == ["b_labels"]
    assert viewer.layers["b_labels"].data.shape == (48, 64)
    widget.outputs.clearSelection()
    widget.open_outputs()  # nothing selected: opens all
    assert len(viewer.layers) == 3

    # A re-run into a folder that is also the input skips earlier outputs.
    widget.inputs_edit.setText(str(out))
    widget.run()
    assert not widget.running and "no TIFF files" in widget.status.text()


def test_cancel_leaves_no_file(widget, inputs, tmp_path, wait_idle, notes, monkeypatch, qtbot):
    rng = np.random.default_rng(1)
    big = inputs / "big.tif"
    _write(big, rng.integers(0, 255, (12, 48, 48), dtype=np.uint8))
    real = inference.iter_predict
    gate, seen = threading.Event(), []

    def gated(*args, **kwargs):
        for event in real(*args, **kwargs):
            yield event
            if isinstance(event, inference.Progress):
                seen.append(event)
                gate.wait(10)

    monkeypatch.setattr(batch, "iter_predict", gated)
    widget.inputs_edit.setText(str(big))
    widget.run()
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)  # the worker holds after its first batch
    widget.cancel()
    gate.set()
    wait_idle(widget)
    assert [event.done for event in seen] == [1]  # 12 tiles, 1 per CPU batch: stopped after one
    assert _files(tmp_path / "out") == [] and widget.output_files() == []
    assert any("cancelled" in message for message in notes["info"])


def test_a_failing_file_leaves_no_file(widget, inputs, tmp_path, wait_idle, notes):
    broken = inputs / "c.tif"
    broken.write_bytes(b"II*\x00 not really a TIFF")
    widget.inputs_edit.setText(f"{inputs / 'a.tif'}; {broken}")
    widget.run()
    wait_idle(widget)
    assert len(notes["error"]) == 1 and "c.tif" in notes["error"][0]
    assert _files(tmp_path / "out") == ["a_labels.tif"]
    assert "failed on c.tif" in widget.status.text() and widget.run_button.isEnabled()


def test_bad_inputs_give_messages(widget, inputs, tmp_path, notes):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    for text, expected in [
        ("", "no TIFF files"),
        (str(tmp_path / "empty"), "no TIFF files"),
        (str(tmp_path / "missing.tif"), "no such file"),
        (str(tmp_path / "notes.txt"), "not a TIFF file"),
    ]:
        widget.inputs_edit.setText(text)
        widget.run()
        assert not widget.running
        assert expected in widget.status.text() and notes["error"][-1] == widget.status.text()
    widget.inputs_edit.setText(str(inputs))
    widget.output_edit.setText("")
    widget.run()
    assert not widget.running and "output folder" in widget.status.text()


def test_the_outputs_have_a_heading_and_open_sits_right_under_them(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QLabel

    widget = BatchWidget(make_napari_viewer())
    qtbot.addWidget(widget)
    widget.resize(420, 900)  # a tall dock: the space left over must not go between them
    widget.show()
    qtbot.waitExposed(widget)
    (heading,) = [x for x in widget.findChildren(QLabel) if x.text() == "Finished outputs"]
    outputs, button = widget.outputs.geometry(), widget.open_button.geometry()
    assert 0 <= outputs.top() - heading.geometry().bottom() < 20
    assert 0 <= button.top() - outputs.bottom() < 20
    # the list keeps a modest height (it scrolls), so Open is not pushed to the dock's bottom
    assert outputs.height() <= widget.outputs.sizeHint().height()
    assert button.bottom() < 600

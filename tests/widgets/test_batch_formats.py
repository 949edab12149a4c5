"""Batch widget output formats: OME-Zarr (image + labels) and OME-TIFF, opened as Labels."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from napari_unet_loop.core.io.read import read_stack
from napari_unet_loop.widgets.batch_widget import BatchWidget


@pytest.mark.parametrize(
    "fmt, name", [("OME-Zarr", "a_labels.zarr"), ("OME-TIFF", "a_labels.ome.tif")]
)
def test_batch_writes_ome_formats_and_opens_the_labels(
    make_napari_viewer, model_file, tmp_path, wait_idle, notes, fmt, name
):
    image = np.random.default_rng(0).integers(0, 255, (3, 40, 48), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "a.tif", image, photometric="minisblack")
    viewer = make_napari_viewer()
    widget = BatchWidget(viewer)
    widget.model_picker.set_file(model_file)
    widget.device_combo.setCurrentText("cpu")
    widget.format_combo.setCurrentText(fmt)
    widget.inputs_edit.setText(str(tmp_path / "a.tif"))
    widget.output_edit.setText(str(tmp_path / "out"))
    widget.run()
    wait_idle(widget)
    assert notes["error"] == []
    output = tmp_path / "out" / name
    assert [p.name for p in widget.output_files()] == [name]
    if fmt == "OME-Zarr":
        root = zarr.open_group(output, mode="r")
        np.testing.assert_array_equal(root["0"][:], image)
        labels_path = output / "labels" / "classes"
    else:
        labels_path = output
    widget.open_outputs()
    [layer] = viewer.layers
    assert layer.name == "a_labels" and layer.data.shape == (3, 40, 48)
    with read_stack(labels_path) as stack:
        np.testing.assert_array_equal(layer.data, stack.to_numpy())

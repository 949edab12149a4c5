"""File ▸ Open Sample: deterministic image + ground truth pairs, and no torch import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unet_loop._sample_data import (
    SAMPLE_SHAPE,
    em_membranes_sample,
    load_sample,
    nuclei_sample,
)


@pytest.mark.parametrize(
    ("sample", "name", "max_label"),
    [(em_membranes_sample, "em_membranes", 1), (nuclei_sample, "nuclei", None)],
)
def test_image_and_ground_truth(sample, name, max_label):
    (image, image_meta, image_kind), (truth, truth_meta, truth_kind) = sample()
    assert (image_kind, truth_kind) == ("image", "labels")
    assert image_meta["name"] == name and truth_meta["name"] == f"{name} ground truth"
    assert image.shape == truth.shape == SAMPLE_SHAPE and image.dtype == np.uint8
    assert truth.dtype.kind == "u" and truth.max() > 0
    if max_label is not None:
        assert truth.max() == max_label
    again = sample()
    np.testing.assert_array_equal(again[0][0], image)  # seeded: the same every time
    np.testing.assert_array_equal(again[1][0], truth)


def test_the_shipped_em_model_segments_the_em_sample_well():
    # The sample is a user's first Segment: it must look like the ssTEM the model knows.
    from napari_unet_loop.core.evaluation.metrics import confusion_counts
    from napari_unet_loop.core.inference.predict import predict
    from napari_unet_loop.core.model.modelfile import load_model

    image, truth = load_sample("em_membranes")
    predicted = predict(image, load_model("em-membranes"), device="cpu").labels
    assert confusion_counts(predicted, truth, 2).dice()[1] >= 0.8  # measured 0.918


def test_napari_opens_the_samples(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-unet-loop", "em_membranes")
    assert [layer.name for layer in viewer.layers] == ["em_membranes", "em_membranes ground truth"]


# Opening a sample (and merely importing the reader, writer and our widgets) must not pay for
# importing torch; only running a model does.
NO_TORCH = """
import sys
import napari_unet_loop._reader, napari_unet_loop._writer, napari_unet_loop._sample_data
import napari_unet_loop.widgets.segment_widget, napari_unet_loop.widgets.batch_widget
import napari_unet_loop.widgets._layers
napari_unet_loop._sample_data.nuclei_sample()
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""


def test_sample_reader_writer_and_widget_modules_do_not_import_torch():
    out = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


BUNDLED = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.mark.parametrize("name", ["em_membranes", "nuclei"])
def test_open_sample_data_is_the_bundled_stacks(name):
    """make_samples.py writes both: they stay the same data."""
    image, labels = load_sample(name)
    np.testing.assert_array_equal(image, tifffile.imread(BUNDLED / f"{name}.tif"))
    np.testing.assert_array_equal(labels, tifffile.imread(BUNDLED / f"{name}_labels.tif"))


# Walkthrough defect 10: napari opens a sample on the GUI thread, and generating it there
# (scipy's spatial and filter modules, then the stacks) froze the viewer for seconds.
COLD_SAMPLE = """
import sys
from napari_unet_loop._sample_data import em_membranes_sample
em_membranes_sample()
print([m for m in ("scipy.spatial", "scipy.ndimage", "torch") if m in sys.modules])
"""


def test_opening_a_sample_reads_it_rather_than_generating_it():
    out = subprocess.run([sys.executable, "-c", COLD_SAMPLE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

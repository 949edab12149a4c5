"""Screenshots of the correction loop for the docs, one PNG per step, on the EM sample.

Opens a real napari window (run it under a display: ``xvfb-run -a python
docs/make_screenshots.py``), segments the bundled synthetic EM stack, corrects one slice,
retrains briefly, scores against the ground truth and batch-segments the sample TIFF.

    xvfb-run -a python docs/make_screenshots.py [--model NAME_OR_PATH] [--out docs/images]

``--model`` is a shipped model's name or a model file; nothing is trained from scratch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TIFF = ROOT / "sample_data" / "em_membranes.tif"
IMAGE = "em_membranes"
TRUTH = f"{IMAGE} ground truth"
SEGMENTATION = f"{IMAGE} segmentation"
CORRECTED_SLICE = 3
RETRAIN_ITERATIONS = 20  # enough to show the loss falling, quick on a CPU
WINDOW_SIZE = (1600, 900)
DOCK_WIDTH = 680  # wide enough for the Dice / IoU table's columns
TIMEOUT_S = 600


def wait_until(done: Callable[[], bool], what: str) -> None:
    """Process Qt events until ``done()`` (the widgets' workers report on the GUI thread)."""
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.05)


def pause(seconds: float = 0.5) -> None:
    """Let the window repaint (and debounced updates such as Dice/IoU fire) before a shot."""
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() > end, "a repaint")


class Shooter:
    """Docks the plugin's widgets and saves numbered whole-window shots, one widget showing."""

    def __init__(self, viewer, out: Path) -> None:
        self.viewer, self.out, self.count = viewer, out, 0
        self.docks: dict = {}  # widget -> its dock
        out.mkdir(parents=True, exist_ok=True)

    def dock(self, widget_class, name: str):
        widget = widget_class(self.viewer)
        self.docks[widget] = self.viewer.window.add_dock_widget(widget, name=name)
        return widget

    def shoot(self, widget, name: str) -> None:
        from qtpy.QtCore import Qt

        for other, dock in self.docks.items():  # hidden widgets keep working
            dock.setVisible(other is widget)
        pause()
        self.viewer.window.resize(*WINDOW_SIZE)  # docking them all stretched the window
        dock = self.docks[widget]
        dock.parentWidget().resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
        pause()
        self.viewer.reset_view()  # fit the image into the canvas the dock leaves
        pause()
        self.count += 1
        self.viewer.screenshot(str(self.out / f"{self.count:02d}_{name}.png"), canvas_only=False)


def correct_slice(labels, truth, z: int) -> None:
    """Paint slice ``z`` to the ground truth as one brush-like edit (what a user would fix)."""
    import numpy as np

    ys, xs = np.nonzero(labels.data[z] != truth[z])
    labels.data_setitem((np.full(ys.shape, z), ys, xs), truth[z][ys, xs])


def choose_model(picker, model: str) -> None:
    from napari_unet_loop.core.model.modelfile import resolve_model_path
    from napari_unet_loop.core.model.registry import shipped_models

    if model in shipped_models():
        picker.combo.setCurrentIndex(picker.combo.findData(model))
    else:
        picker.set_file(resolve_model_path(model))


def make_screenshots(model: str, out: Path, work: Path) -> None:
    import napari

    from napari_unet_loop._sample_data import em_membranes_sample
    from napari_unet_loop.widgets.batch_widget import BatchWidget
    from napari_unet_loop.widgets.metrics_widget import MetricsWidget
    from napari_unet_loop.widgets.retrain_widget import RetrainWidget
    from napari_unet_loop.widgets.segment_widget import SegmentWidget

    viewer = napari.Viewer(title="napari-unet-loop")
    viewer.window.resize(*WINDOW_SIZE)
    for data, kwargs, kind in em_membranes_sample():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    viewer.layers[TRUTH].visible = False  # a user correcting has no ground truth to look at
    viewer.dims.set_current_step(0, CORRECTED_SLICE)
    shots = Shooter(viewer, out)

    segment = shots.dock(SegmentWidget, "Segment")
    choose_model(segment.model_picker, model)
    metrics = shots.dock(MetricsWidget, "Dice / IoU")  # docked early: a row per model version
    retrain = shots.dock(RetrainWidget, "Correct and Retrain")
    batch = shots.dock(BatchWidget, "Batch segment")

    segment.run()
    wait_until(lambda: not segment.running, "Segment")
    if SEGMENTATION not in viewer.layers:
        raise SystemExit(f"Segment failed: {segment.status.text()}")
    viewer.layers.selection.active = labels = viewer.layers[SEGMENTATION]
    metrics.pred_combo.setCurrentText(SEGMENTATION)
    metrics.truth_combo.setCurrentText(TRUTH)
    shots.shoot(segment, "segment")

    correct_slice(labels, viewer.layers[TRUTH].data, CORRECTED_SLICE)
    labels.mode = "paint"  # the brush a user corrects with
    retrain.labels_combo.setCurrentText(SEGMENTATION)
    retrain.iterations.setValue(RETRAIN_ITERATIONS)
    shots.shoot(retrain, "corrected_slice")

    retrain.retrain()
    wait_until(
        lambda: retrain.status.text().startswith("Iteration") or not retrain.running,
        "the first iteration",
    )
    shots.shoot(retrain, "retraining")
    wait_until(lambda: not retrain.running, "Retrain")
    retrain.resegment_unedited()
    wait_until(lambda: not retrain.running, "re-segmenting")
    shots.shoot(retrain, "retrained")

    wait_until(lambda: not metrics.running, "Dice / IoU")
    shots.shoot(metrics, "dice_iou")

    shutil.copy(SAMPLE_TIFF, work)  # "~/…" paths: the shots show no machine's folders
    batch.inputs_edit.setText(f"~/{SAMPLE_TIFF.name}")
    batch.output_edit.setText("~/segmented")
    batch.run()
    wait_until(lambda: not batch.running, "Batch segment")
    shots.shoot(batch, "batch")
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="em-membranes",
                        help="shipped model name or model file (default: em-membranes)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images",
                        help="folder for the PNGs (default: docs/images)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unet-loop-") as work:
        # A private home: corrections autosave there, so runs neither read nor leave any, and
        # napari starts with default settings.
        os.environ["HOME"] = work
        from napari_unet_loop.core.errors import ModelFileError
        from napari_unet_loop.core.model.modelfile import resolve_model_path

        try:
            resolve_model_path(args.model)
        except ModelFileError as exc:
            parser.error(str(exc))
        make_screenshots(args.model, args.out.resolve(), Path(work))


if __name__ == "__main__":
    main()

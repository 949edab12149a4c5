"""Screenshots of the correction loop for the docs, one PNG per step, in the U-Net Loop panel.

Opens a real napari window of 1920×1080 (run it under a display: ``xvfb-run -a python
docs/make_screenshots.py``), segments the bundled synthetic EM stack, corrects one slice,
retrains briefly, scores against the ground truth and batch-segments the sample TIFF.

    xvfb-run -a python docs/make_screenshots.py [--model NAME_OR_PATH] [--out docs/images]
        [--image STACK.tif --truth LABELS.tif]

``--model`` is a shipped model's name or a model file; nothing is trained from scratch.
``--image``/``--truth`` run the same steps on your own stack, to look at: never commit shots
of data you may not publish.
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
WINDOW_SIZE = (1920, 1080)  # a common screen: the panel must fit beside the layer list
DOCK_WIDTH = 560
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
    """Docks the U-Net Loop panel and saves numbered whole-window shots of its sections."""

    def __init__(self, viewer, out: Path) -> None:
        from napari_unet_loop.widgets.loop_panel import LoopPanel

        self.viewer, self.out, self.count = viewer, out, 0
        out.mkdir(parents=True, exist_ok=True)
        self.panel = LoopPanel(viewer)
        self.dock = viewer.window.add_dock_widget(self.panel, name="U-Net Loop")

    def section(self, name: str):
        return self.panel.show_section(name)

    def shoot(self, section: str, name: str) -> None:
        from qtpy.QtCore import Qt

        self.panel.show_section(section)
        pause()
        self.viewer.window.resize(*WINDOW_SIZE)
        self.dock.parentWidget().resizeDocks([self.dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
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


def open_layers(viewer, image: Path | None, truth: Path | None) -> tuple[str, str, Path]:
    """The sample (default) or the given stack and ground truth; returns their layer names and
    the TIFF that Batch segments."""
    from napari_unet_loop._sample_data import em_membranes_sample

    if image is None:
        for data, kwargs, kind in em_membranes_sample():
            getattr(viewer, f"add_{kind}")(data, **kwargs)
        return IMAGE, TRUTH, SAMPLE_TIFF
    viewer.open(str(image), plugin="napari-unet-loop")
    if truth is not None:
        viewer.open(str(truth), plugin="napari-unet-loop")
    return image.stem, truth.stem if truth is not None else "", image


def make_screenshots(
    model: str, out: Path, work: Path, image: Path | None = None, truth: Path | None = None
) -> None:
    import napari

    from napari_unet_loop.app.next_step import BATCH, CORRECT, MEASURE, SEGMENT

    viewer = napari.Viewer(title="napari-unet-loop")
    viewer.window.resize(*WINDOW_SIZE)
    image_name, truth_name, tiff = open_layers(viewer, image, truth)
    segmentation = f"{image_name} segmentation"
    if truth_name:
        viewer.layers[truth_name].visible = False  # a user correcting has no truth to look at
    viewer.dims.set_current_step(0, CORRECTED_SLICE)
    shots = Shooter(viewer, out)

    segment = shots.section(SEGMENT)
    segment.image_combo.setCurrentText(image_name)
    choose_model(segment.model_picker, model)
    metrics = shots.section(MEASURE)  # built early: a history row per model version
    retrain = shots.section(CORRECT)
    batch = shots.section(BATCH)
    shots.shoot(SEGMENT, "open")

    segment.run()
    wait_until(lambda: not segment.running, "Segment")
    if segmentation not in viewer.layers:
        raise SystemExit(f"Segment failed: {segment.status.text()}")
    viewer.layers.selection.active = labels = viewer.layers[segmentation]
    metrics.pred_combo.setCurrentText(segmentation)
    if truth_name:
        metrics.truth_combo.setCurrentText(truth_name)
    shots.shoot(SEGMENT, "segment")

    if truth_name:
        from napari_unet_loop.core.evaluation.labelmap import class_map

        # the truth as the model's classes (ISBI: 255 = interior = class 0, hence "swap")
        truth_data = viewer.layers[truth_name].data
        swap = image is not None and int(truth_data.max()) == 255
        classes, _ = class_map(truth_data, 2, invert=swap)
        correct_slice(labels, classes, CORRECTED_SLICE)
        metrics.invert_check.setChecked(swap)
    labels.mode = "paint"  # the brush a user corrects with
    retrain.labels_combo.setCurrentText(segmentation)
    retrain.iterations.setValue(RETRAIN_ITERATIONS)
    shots.shoot(CORRECT, "corrected_slice")

    retrain.retrain()
    wait_until(
        lambda: len(retrain.curve.live.loss) > RETRAIN_ITERATIONS // 2 or not retrain.running,
        "half the iterations",
    )
    shots.shoot(CORRECT, "retraining")
    wait_until(lambda: not retrain.running, "Retrain")
    retrain.resegment_unedited()
    wait_until(lambda: not retrain.running, "re-segmenting")
    shots.shoot(CORRECT, "retrained")

    if truth_name:
        wait_until(lambda: not metrics.running, "Dice / IoU")
        shots.shoot(MEASURE, "dice_iou")

    shutil.copy(tiff, work)  # "~/…" paths: the shots show no machine's folders
    batch.inputs_edit.setText(f"~/{tiff.name}")
    batch.output_edit.setText("~/segmented")
    batch.run()
    wait_until(lambda: not batch.running, "Batch segment")
    shots.shoot(BATCH, "batch")
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="em-membranes",
        help="shipped model name or model file (default: em-membranes)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "images",
        help="folder for the PNGs (default: docs/images)",
    )
    parser.add_argument("--image", type=Path, help="a stack of your own instead of the sample")
    parser.add_argument("--truth", type=Path, help="its ground truth (with --image)")
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
        make_screenshots(args.model, args.out.resolve(), Path(work), args.image, args.truth)


if __name__ == "__main__":
    main()

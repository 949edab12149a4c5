"""The correction loop on ISBI 2012, driven through the real napari widgets as a user would.

Opens ``train-volume.tif`` and ``train-labels.tif`` with the plugin's reader in a real napari
window, segments the stack with a shipped model, corrects slice 3 (its ground truth painted in),
retrains with the default settings, re-segments the unedited slices, reads Dice/IoU per slice
before and after from the Dice / IoU widget, and batch-segments ``test-volume.tif`` to a
folder; then segments ``test-volume.tif`` in the viewer once more, now that torch is warm. A
20 ms Qt timer records the longest gap of the event loop in each step: the viewer must never
freeze. Each step's job is recorded as the widget starts it and run again, with the same
arguments, outside the viewer's workers once the walkthrough is done: the ratio of the two
times is what the viewer costs (the run outside finds torch warm, which favours it over the
first Segment; the last step compares like with like).

    xvfb-run -a python benchmarks/gui_loop.py [--data DIR] [--model em-membranes]

Prints a table and writes ``benchmarks/results/gui_loop.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CORRECTED = 3
WARM = "segment test-volume.tif, torch warm"
TIMEOUT_S = 1200


class GapMeter:
    """A 20 ms timer on the GUI thread; the longest interval between ticks is the worst freeze."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()
        self.worst = 0.0
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last)
        self.last = now

    def reset(self) -> None:
        self.last, self.worst = time.perf_counter(), 0.0


def wait(done, gaps: GapMeter, what: str) -> float:
    """Run the Qt event loop until ``done()``; returns the seconds it took."""
    from qtpy.QtWidgets import QApplication

    start = time.perf_counter()
    gaps.reset()
    while not done():
        if time.perf_counter() - start > TIMEOUT_S:
            raise SystemExit(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.005)
    return time.perf_counter() - start


class Recorder:
    """Records each call of a job function the widgets start, to run the same work again
    outside the viewer (``replay``)."""

    def __init__(self, module, name: str) -> None:
        self.original = getattr(module, name)
        self.calls: list[tuple[tuple, dict]] = []

        def recorded(*args, **kwargs):
            self.calls.append((args, kwargs))
            return self.original(*args, **kwargs)

        setattr(module, name, recorded)

    def replay(self, change=lambda args, kwargs: (args, kwargs), call: int = 0) -> float:
        """Seconds to run recorded call number ``call`` to its end (``change`` may alter its
        arguments: a fresh result object, another output path)."""
        args, kwargs = change(*self.calls[call])
        start = time.perf_counter()
        for _ in self.original(*args, **kwargs):
            pass
        return time.perf_counter() - start


def dock(viewer, name: str):
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-loop", name)
    return widget


def run(data: Path, model: str, work: Path) -> dict:
    import napari

    from napari_unet_loop.app import segment_job
    from napari_unet_loop.app.session import session_for
    from napari_unet_loop.core.inference import batch as core_batch
    from napari_unet_loop.widgets import _resegment, retrain_widget, segment_widget

    viewer = napari.Viewer(title="napari-unet-loop ISBI walkthrough")
    gaps = GapMeter()
    isbi = work / "isbi2012"  # a copy: corrections autosave beside the image, not in the data
    isbi.mkdir()
    for name in ("train-volume.tif", "train-labels.tif", "test-volume.tif"):
        shutil.copy(data / "isbi2012" / name, isbi)
    volume = viewer.open(isbi / "train-volume.tif", plugin="napari-unet-loop")[0]
    truth = viewer.open(isbi / "train-labels.tif", plugin="napari-unet-loop")[0]
    seg_name = f"{volume.name} segmentation"
    steps: dict[str, dict] = {}
    segments = Recorder(segment_widget, "segment")
    jobs = {  # step: its recorded job and which of its calls
        "segment 30 slices": (segments, 0),
        "retrain (default settings)": (Recorder(retrain_widget, "retrain"), 0),
        "re-segment 29 unedited slices": (Recorder(_resegment, "predict_slices"), 0),
        "batch test-volume.tif": (Recorder(core_batch, "iter_segment_file"), 0),
        WARM: (segments, 1),
    }

    segment = dock(viewer, "Segment")
    metrics = dock(viewer, "Dice / IoU")
    retrain = dock(viewer, "Correct and Retrain")
    batch = dock(viewer, "Batch segment")

    segment.image_combo.setCurrentText(volume.name)
    segment.model_picker.combo.setCurrentIndex(segment.model_picker.combo.findData(model))
    segment.run()
    seconds = wait(lambda: not segment.running, gaps, "Segment")
    steps["segment 30 slices"] = {"seconds": seconds, "worst_gui_gap_s": gaps.worst}
    labels = viewer.layers[seg_name]

    metrics.pred_combo.setCurrentText(seg_name)
    metrics.truth_combo.setCurrentText(truth.name)
    metrics.invert_check.setChecked(True)  # ISBI: 255 = cell interior = class 0
    metrics.recompute()
    wait(lambda: not metrics.running and metrics.evaluation is not None, gaps, "metrics")
    before = metrics.evaluation

    target = np.where(np.asarray(truth.data[CORRECTED]) == 255, 0, 1).astype(labels.data.dtype)
    ys, xs = np.nonzero(np.asarray(labels.data[CORRECTED]) != target)
    labels.data_setitem((np.full(ys.shape, CORRECTED), ys, xs), target[ys, xs])
    session = session_for(viewer)
    wait(lambda: session.edited_slices(seg_name) == [CORRECTED], gaps, "the edit to register")

    retrain.labels_combo.setCurrentText(seg_name)
    retrain.retrain()
    seconds = wait(lambda: not retrain.running, gaps, "Retrain")
    steps["retrain (default settings)"] = {"seconds": seconds, "worst_gui_gap_s": gaps.worst}
    retrain.resegment_unedited()
    seconds = wait(lambda: not retrain.running, gaps, "re-segmenting")
    steps["re-segment 29 unedited slices"] = {"seconds": seconds, "worst_gui_gap_s": gaps.worst}
    metrics.recompute()
    wait(lambda: not metrics.running and metrics.evaluation is not before, gaps, "metrics")
    after = metrics.evaluation

    batch.inputs_edit.setText(str(isbi / "test-volume.tif"))
    batch.output_edit.setText(str(work / "out"))
    batch.run()
    seconds = wait(lambda: not batch.running, gaps, "Batch")
    steps["batch test-volume.tif"] = {"seconds": seconds, "worst_gui_gap_s": gaps.worst}
    outputs = sorted(p.name for p in (work / "out").glob("*.tif"))

    test = viewer.open(isbi / "test-volume.tif", plugin="napari-unet-loop")[0]
    segment.image_combo.setCurrentText(test.name)
    segment.run()
    seconds = wait(lambda: not segment.running, gaps, "Segment")
    steps["segment test-volume.tif, torch warm"] = {
        "seconds": seconds,
        "worst_gui_gap_s": gaps.worst,
    }

    (work / "core").mkdir()

    def fresh(args, kwargs):  # a new result object for Segment's job
        return (args[0], args[1], segment_job.SegmentResult()), kwargs

    elsewhere = {
        "segment 30 slices": fresh,
        WARM: fresh,
        "batch test-volume.tif": lambda a, k: ((a[0], work / "core" / Path(a[1]).name), k),
    }
    for name, (recorder, call) in jobs.items():
        outside = recorder.replay(elsewhere.get(name, lambda a, k: (a, k)), call)
        steps[name] |= {"outside_s": outside, "ratio": steps[name]["seconds"] / outside}
    viewer.close()
    return {
        "model": model,
        "corrected_slice": CORRECTED,
        "steps": steps,
        "dice_before": before.mean_dice,
        "dice_after": after.mean_dice,
        "scored_slices_after": after.scored,
        "per_slice_before": before.rows,
        "per_slice_after": after.rows,
        "batch_outputs": outputs,
    }


def markdown(result: dict) -> str:
    lines = [
        "| step | wall time (s) | same job outside the viewer (s) | ratio "
        "| longest GUI freeze (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, step in result["steps"].items():
        lines.append(
            f"| {name} | {step['seconds']:.1f} | {step['outside_s']:.1f} | {step['ratio']:.2f} "
            f"| {1000 * step['worst_gui_gap_s']:.0f} |"
        )
    lines += ["", "| class | Dice before | Dice after one corrected slice |", "|---|---:|---:|"]
    for name, value in result["dice_before"].items():
        lines.append(f"| {name} | {value:.4f} | {result['dice_after'][name]:.4f} |")
    lines.append("")
    lines.append(
        f"Mean over the {len(result['scored_slices_after'])} unedited slices "
        f"(slice {result['corrected_slice']} corrected); batch wrote {result['batch_outputs']}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", default="em-membranes")
    args = parser.parse_args()
    if not (args.data / "isbi2012" / "train-volume.tif").is_file():
        raise SystemExit(f"ISBI 2012 data not found under {args.data}")
    with tempfile.TemporaryDirectory(prefix="unet-loop-gui-") as work:
        os.environ["HOME"] = work  # autosaved corrections go to a throwaway home
        result = run(args.data.resolve(), args.model, Path(work))
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = markdown(result)
    (RESULTS / "gui_loop.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "gui_loop.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()

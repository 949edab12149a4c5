"""Startup: from importing the plugin to the first segmented slice in a running napari.

Each run is a fresh Python process (imports are cold for Python; the OS file cache is warm):
it opens a napari viewer and the ISBI 2012 stack ``train-volume.tif`` with the plugin's reader
(or the plugin's EM sample when the data is absent), then times t0 → import of the Segment
widget's module, the widget docked as from the Plugins menu, em-membranes and "current slice"
chosen, Segment clicked, until the Labels layer holding that slice is in the viewer (t1).
Target: t1 - t0 ≤ 3 s on the CPU, and neither napari nor the image may import torch.

Beside each timed run, an instrumented run does the same steps one after another (torch and
the worker's imports loaded explicitly first, the worker's model load and prediction wrapped
to mark their ends) to show where the time goes.

    xvfb-run -a python benchmarks/startup.py [--data DIR] [--repeats 3] [--quick]

Prints Markdown tables and writes ``benchmarks/results/startup.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Only the standard library up here: the measured child processes run this file too, and
# must start without torch (``_common`` imports it; the parent loads it inside functions).

PLUGIN = "napari-unet-loop"
WIDGET_MODULE = "napari_unet_loop.widgets.segment_widget"
MODEL = "em-membranes"
ISBI_VOLUME = "isbi2012/train-volume.tif"
SAMPLE = "em_membranes"
TARGET_S = 3.0
SETTLE_S = 1.0  # event loop time after the viewer and after the image, before t0
TIMEOUT_S = 300
CHILD_TIMEOUT_S = 2 * TIMEOUT_S

# Marks of a timed run, in order; each step runs from one mark to the next.
PLAIN_STEPS = [
    ("widget import", "t0", "module"),
    ("widget creation (torch starts importing in the background)", "module", "widget"),
    ("click", "widget", "clicked"),
    ("click → slice shown", "clicked", "t1"),
]
INSTRUMENTED_STEPS = [
    ("import the Segment widget module", "t0", "module"),
    ("import torch", "module", "torch"),
    ("import the worker's modules (core.inference, core.postprocess)", "torch", "worker_modules"),
    ("dock the widget, choose model and scope", "worker_modules", "widget"),
    ("click → worker starts loading the model", "widget", "load_start"),
    ("load the model", "load_start", "load_end"),
    ("predict the slice (read, normalize, network)", "load_end", "predict_end"),
    ("worker result → Labels layer in the viewer", "predict_end", "t1"),
]


# --- the child process: one measured run ------------------------------------------------


def process_events_until(done, what: str) -> None:
    from qtpy.QtWidgets import QApplication

    start = time.perf_counter()
    while not done():
        if time.perf_counter() - start > TIMEOUT_S:
            raise SystemExit(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.002)


def settle_from(name: str, mark) -> None:
    """Mark ``name`` once the events so far are handled, then let the event loop run a while."""
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    mark(name)
    end = time.perf_counter() + SETTLE_S
    process_events_until(lambda: time.perf_counter() > end, "the event loop to settle")
    mark(f"{name}_settled")


def open_image(viewer, image: Path | None):
    """The Image layer of ``image`` (the plugin's reader) or of the plugin's EM sample."""
    from napari.layers import Image

    layers = (
        viewer.open_sample(PLUGIN, SAMPLE) if image is None else viewer.open(image, plugin=PLUGIN)
    )
    return next(layer for layer in layers if isinstance(layer, Image))


def open_napari(image: Path | None, mark) -> tuple:
    """A settled viewer showing the image (before t0), its Image layer, and whether torch was
    loaded once the viewer was up and once the image was open."""
    mark("start")
    import napari

    viewer = napari.Viewer(title="napari-unet-loop startup")
    settle_from("viewer", mark)
    torch_loaded = {"torch_after_viewer": "torch" in sys.modules}
    layer = open_image(viewer, image)
    settle_from("image", mark)
    torch_loaded["torch_after_image"] = "torch" in sys.modules
    return viewer, layer, torch_loaded


def dock_segment(viewer, module, image):
    """The Segment widget as the Plugins menu makes it, set to em-membranes on one slice."""
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment")
    widget.image_combo.setCurrentText(image.name)
    widget.model_picker.combo.setCurrentIndex(widget.model_picker.combo.findData(MODEL))
    widget.scope_combo.setCurrentText(module.CURRENT_SLICE)
    return widget


def instrument(mark) -> None:
    """Import torch, then the worker's other modules, marking each; then wrap the worker's model
    load and prediction so that the worker thread marks their ends."""
    importlib.import_module("torch")
    mark("torch")
    importlib.import_module("napari_unet_loop.core.inference.postprocess")
    inference = importlib.import_module("napari_unet_loop.core.inference.predict")
    models = importlib.import_module("napari_unet_loop.app.models")
    mark("worker_modules")
    load_source, iter_predict = models.load_source, inference.iter_predict

    def timed_load(*args):
        mark("load_start")
        model = load_source(*args)
        mark("load_end")
        return model

    def timed_predict(*args, **kwargs):
        result = yield from iter_predict(*args, **kwargs)
        mark("predict_end")
        return result

    models.load_source, inference.iter_predict = timed_load, timed_predict


def measure(image: Path | None, instrumented: bool) -> dict:
    """One run in this (fresh) process: napari and the image, then t0 → first slice → t1."""
    marks: dict[str, float] = {}

    def mark(name: str) -> None:
        marks[name] = time.perf_counter()  # also called from the worker thread

    viewer, layer, torch_loaded = open_napari(image, mark)
    preloaded = sorted(m for m in sys.modules if m.startswith("napari_unet_loop"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    mark("t0")
    module = importlib.import_module(WIDGET_MODULE)
    mark("module")
    torch_after_module = "torch" in sys.modules
    if instrumented:
        instrument(mark)
    widget = dock_segment(viewer, module, layer)
    mark("widget")
    widget.run_button.click()
    mark("clicked")
    name = f"{layer.name} segmentation"
    process_events_until(
        lambda: name in viewer.layers and viewer.layers[name].data.any(), "the segmented slice"
    )
    mark("t1")

    labels = viewer.layers[name].data
    process_events_until(lambda: not widget.running, "the worker to end")
    viewer.close()
    steps = INSTRUMENTED_STEPS if instrumented else PLAIN_STEPS
    return {
        "instrumented": instrumented,
        "image_shape": list(layer.data.shape),
        "segmented_slices": [z for z in range(labels.shape[0]) if labels[z].any()],
        "napari_start_s": marks["viewer"] - marks["start"],
        "open_image_s": marks["image"] - marks["viewer_settled"],
        "first_slice_s": marks["t1"] - marks["t0"],
        "steps": {label: marks[end] - marks[begin] for label, begin, end in steps},
        **torch_loaded,
        "torch_after_widget_module": torch_after_module,
        "plugin_modules_before_t0": preloaded,
        "load_average_1min": load,
    }


# --- the parent process: runs, summary, report ------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "data",
        help="folder holding isbi2012/ (default: %(default)s); without "
        "the stack the plugin's EM sample is used",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs, each with an instrumented twin (default: %(default)s)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: one timed and one instrumented run, no warm-up run "
        "(written to startup-quick.json)",
    )
    # How the parent starts a measured run (one fresh process each).
    p.add_argument("--child", choices=["plain", "instrumented"], help=argparse.SUPPRESS)
    p.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def require_display() -> None:
    from _common import BenchmarkError

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise BenchmarkError(
            "no display: napari needs one (on a headless machine: xvfb-run -a python "
            "benchmarks/startup.py)"
        )


def run_child(kind: str, image: Path | None, work: Path) -> dict:
    """One measured run in a fresh Python process; its result dict."""
    from _common import BenchmarkError

    out = work / "run.json"
    command = [sys.executable, __file__, "--child", kind, "--out", str(out)]
    if image is not None:
        command += ["--image", str(image)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BenchmarkError(f"a {kind} run failed (exit {done.returncode}): {last}")
    return json.loads(out.read_text())


def summary(runs: list[dict], key) -> dict[str, float]:
    values = [key(run) for run in runs]
    return {"median": statistics.median(values), "max": max(values)}


def report(plain: list[dict], instrumented: list[dict], source: str, env: dict) -> str:
    from _common import device_text, fmt, markdown_table

    first = plain[0]
    shape = "×".join(map(str, first["image_shape"]))
    slices = ", ".join(map(str, first["segmented_slices"]))
    lines = [
        f"Import of the plugin → first segmented slice in napari: {source}, {shape}, "
        f"{MODEL}, current slice {slices}; {device_text(env)}; "
        f"{len(plain)} fresh process(es), OS file cache warm.",
        "",
    ]
    columns = [("import → first slice (s)", lambda r: r["first_slice_s"])]
    columns += [(f"{label} (s)", lambda r, s=label: r["steps"][s]) for label, _, _ in PLAIN_STEPS]
    columns += [
        ("napari start (s)", lambda r: r["napari_start_s"]),
        ("open image (s)", lambda r: r["open_image_s"]),
    ]
    rows = [
        [
            str(i),
            *(f"{get(run):.2f}" for _, get in columns),
            _yes_no(run["torch_after_viewer"]),
            _yes_no(run["torch_after_image"]),
            fmt(run["load_average_1min"], 1),
        ]
        for i, run in enumerate(plain, 1)
    ]
    for stat in ("median", "max"):
        rows.append([stat, *(f"{summary(plain, get)[stat]:.2f}" for _, get in columns), "", "", ""])
    header = [
        "run",
        *(name for name, _ in columns),
        "torch after viewer",
        "torch after image",
        "load average",
    ]
    lines += [markdown_table(header, rows), ""]

    total = summary(plain, lambda r: r["first_slice_s"])
    met = total["max"] <= TARGET_S and not any(
        r["torch_after_viewer"] or r["torch_after_image"] for r in plain
    )
    lines += [
        f"Target ≤ {TARGET_S:g} s with torch not imported before: "
        f"{'met' if met else 'missed'} (median {total['median']:.2f} s, "
        f"max {total['max']:.2f} s).",
        "",
    ]

    lines += ["Where the time goes (instrumented runs: the same steps one after another):", ""]
    rows = [
        [
            label,
            *(
                f"{summary(instrumented, lambda r, s=label: r['steps'][s])[k]:.2f}"
                for k in ("median", "max")
            ),
        ]
        for label, _, _ in INSTRUMENTED_STEPS
    ]
    whole = summary(instrumented, lambda r: r["first_slice_s"])
    rows.append(["total", f"{whole['median']:.2f}", f"{whole['max']:.2f}"])
    lines.append(markdown_table(["step", "median (s)", "max (s)"], rows))
    return "\n".join(lines)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def pick_image(data: Path, work: Path) -> tuple[Path | None, str]:
    """A copy of the ISBI stack in ``work`` (None: the plugin's sample) and how to name it."""
    volume = data / ISBI_VOLUME
    if not volume.is_file():
        print(
            f"startup.py: {volume} not found: using the plugin's {SAMPLE} sample", file=sys.stderr
        )
        return None, f"the plugin's {SAMPLE} sample ({volume} not found)"
    # A copy: corrections autosaved beside the shared file would be loaded into the run.
    return Path(shutil.copy(volume, work)), f"ISBI 2012 {volume.name}"


def run(args: argparse.Namespace) -> None:
    import torch
    from _common import BenchmarkError, environment, write_results

    if args.repeats < 1:
        raise BenchmarkError(f"bad --repeats {args.repeats}: 1 or more")
    require_display()
    repeats = 1 if args.quick else args.repeats
    env = environment(torch.device("cpu"))
    with tempfile.TemporaryDirectory(prefix="unet-loop-startup-") as tmp:
        work = Path(tmp)
        image, source = pick_image(args.data, work)
        if not args.quick:
            print("warm-up run (not recorded)…", file=sys.stderr, flush=True)
            run_child("plain", image, work)
        plain, instrumented = [], []
        for i in range(1, repeats + 1):
            print(f"run {i}/{repeats}…", file=sys.stderr, flush=True)
            plain.append(run_child("plain", image, work))
            instrumented.append(run_child("instrumented", image, work))
    markdown = report(plain, instrumented, source, env)
    payload = {
        "benchmark": "startup",
        "quick": args.quick,
        "environment": env,
        "source": source,
        "model": MODEL,
        "target_s": TARGET_S,
        "first_slice_s": summary(plain, lambda r: r["first_slice_s"]),
        "runs": plain,
        "instrumented_runs": instrumented,
    }
    json_path, md_path = write_results(
        "startup-quick" if args.quick else "startup", payload, markdown
    )
    print(markdown)
    print(f"\nwrote {json_path.name} and {md_path.name} in benchmarks/results/", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = measure(args.image, args.child == "instrumented")
        args.out.write_text(json.dumps(result))
        return 0
    from _common import BenchmarkError

    try:
        run(args)
    except BenchmarkError as exc:
        sys.exit(f"startup.py: error: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GUI freezes outside the loop's steps: opening a stack, docking each widget, opening each
sample, and closing the viewer while Retrain runs.

Each case runs in a fresh Python process (imports are cold, as on a user's first time) with a
shown napari window. Once the window has settled, the action starts from the Qt event loop and
a 20 ms Qt timer records the longest gap between its ticks (the worst freeze) until the action
and the background work it started (torch's import, a worker) have ended, plus one second. The
GUI thread's CPU time over the same span is printed beside it: unlike the gap, it hardly
depends on other load on the machine. ``--profile CASE`` prints where that CPU time went.

    xvfb-run -a python benchmarks/freezes.py [--data DIR] [--cases open,dock-segment,...]

Prints a table and writes ``benchmarks/results/freezes.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Only the standard library up here: the measured child processes must start cold.

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "napari-unet-loop"
DOCKS = {
    "dock-segment": "Segment",
    "dock-retrain": "Correct and Retrain",
    "dock-metrics": "Dice / IoU",
    "dock-batch": "Batch segment",
    "dock-panel": "U-Net Loop",
}
SAMPLES = {"sample-em": "em_membranes", "sample-nuclei": "nuclei"}
CASES = ["open", *DOCKS, *SAMPLES, "close-during-retrain"]
SETTLE_S = 2.0  # event loop time after the window (and any setup) before the action
AFTER_S = 1.0
TIMEOUT_S = 600


def pump_until(done, timeout: float = TIMEOUT_S) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        QApplication.processEvents()
        time.sleep(0.002)


def pump(seconds: float) -> None:
    end = time.monotonic() + seconds
    pump_until(lambda: time.monotonic() > end)


def background_busy() -> bool:
    """True while a thread other than the GUI's runs: torch's import, a worker."""
    from qtpy.QtCore import QThreadPool

    others = [t for t in threading.enumerate() if t.name.startswith("unet-loop")]
    return any(t.is_alive() for t in others) or QThreadPool.globalInstance().activeThreadCount()


def volume(data: Path) -> Path:
    path = data / "isbi2012" / "train-volume.tif"
    if not path.is_file():
        raise SystemExit(f"freezes.py: error: data not found: {path}")
    return path


def setup(case: str, viewer, data: Path):
    """What the case starts from; returns the action to measure."""
    if case == "open":
        return lambda: viewer.open(str(volume(data)), plugin=PLUGIN)
    if case in DOCKS:
        viewer.open(str(volume(data)), plugin=PLUGIN)
        return lambda: viewer.window.add_plugin_dock_widget(PLUGIN, DOCKS[case])
    if case in SAMPLES:
        return lambda: viewer.open_sample(PLUGIN, SAMPLES[case])
    # close-during-retrain: the EM sample's ground truth, one slice "corrected", retrained
    # from the shipped em-membranes model; the viewer closes once training reports.
    import numpy as np

    from napari_unet_loop.app.session import session_for

    viewer.open_sample(PLUGIN, "em_membranes")
    _, retrain = viewer.window.add_plugin_dock_widget(PLUGIN, "Correct and Retrain")
    truth = viewer.layers["em_membranes ground truth"]
    retrain.labels_combo.setCurrentText(truth.name)
    retrain.image_combo.setCurrentText("em_membranes")
    ys, xs = np.nonzero(np.ones((4, 4), bool))
    truth.data_setitem((np.zeros_like(ys), ys, xs), 1 - truth.data[0, ys, xs])
    pump_until(lambda: session_for(viewer).edited_slices(truth.name) == [0])
    retrain.retrain()
    pump_until(lambda: retrain._report.loss is not None)
    return viewer.close


def child(case: str, data: Path, profile: bool) -> dict:
    import napari
    from gui_loop import GapMeter

    viewer = napari.Viewer()
    pump(SETTLE_S)
    action = setup(case, viewer, data)
    pump_until(lambda: not background_busy())
    pump(SETTLE_S)
    gaps = GapMeter()
    done: dict[str, float] = {}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
    cpu, start = time.thread_time(), time.perf_counter()

    def act() -> None:
        action()
        done["call_s"] = time.perf_counter() - start

    from qtpy.QtCore import QTimer

    gaps.reset()
    QTimer.singleShot(0, act)
    pump_until(lambda: "call_s" in done and not background_busy())
    pump(AFTER_S)
    result = {
        "case": case,
        "worst_gui_gap_s": gaps.worst,
        "gui_cpu_s": time.thread_time() - cpu,
        "call_s": done["call_s"],
        "torch_imported": "torch" in sys.modules,
    }
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    if case != "close-during-retrain":
        viewer.close()
    return result


def run_child(case: str, data: Path, work: Path, profile: bool) -> dict:
    out = work / f"{case}.json"
    command = [sys.executable, __file__, "--child", case, "--out", str(out), "--data", str(data)]
    env = {**os.environ, "HOME": str(work)}  # autosaved corrections go to a throwaway home
    if profile:
        command.append("--profile")
        subprocess.run(command, env=env, timeout=TIMEOUT_S * 2, check=True)
    else:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S * 2
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return {"case": case, "error": last}
    return json.loads(out.read_text())


def markdown(runs: list[dict], load: float | None) -> str:
    lines = [
        "| action | longest GUI freeze (ms) | GUI-thread CPU (ms) | call returns (ms) |",
        "|---|---:|---:|---:|",
    ]
    for run in runs:
        if "error" in run:
            lines.append(f"| {run['case']} | failed: {run['error']} | | |")
            continue
        lines.append(
            f"| {run['case']} | {1000 * run['worst_gui_gap_s']:.0f} | "
            f"{1000 * run['gui_cpu_s']:.0f} | {1000 * run['call_s']:.0f} |"
        )
    if load is not None:
        lines += ["", f"Load average {load:.1f} at the start ({os.cpu_count()} CPU cores)."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cases", default=",".join(CASES), help=", ".join(CASES))
    parser.add_argument("--profile", action="store_true", help="print cProfile of the GUI thread")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}: choose from {CASES}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    if args.child:
        args.out.write_text(json.dumps(child(args.child, args.data, args.profile)))
        return 0
    volume(args.data)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    runs = []
    with tempfile.TemporaryDirectory(prefix="unet-loop-freezes-") as work:
        for case in args.cases.split(","):
            print(f"{case}…", file=sys.stderr, flush=True)
            runs.append(run_child(case, args.data.resolve(), Path(work), args.profile))
    table = markdown(runs, load)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "freezes.json").write_text(
        json.dumps({"load_average": load, "runs": runs}, indent=2)
    )
    (results / "freezes.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

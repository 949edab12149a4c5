"""Peak memory of batch segmentation: a 1 GB stack against a 250 MB one, streamed from disk.

Each run is ``unet-loop segment`` in its own process (uncompressed uint8 TIFF in, compressed
label TIFF out), so its peak resident memory (``ru_maxrss`` from ``wait4``) is that of a user
running the CLI. A tiny network keeps the run short on a CPU: the network's size adds the same
constant to every run, while memory that grows with the stack would show in the ratio.
The stacks are synthetic (membrane-like slices made by the package), written to a temporary
folder (``--workdir`` to move it) and deleted afterwards.

    python benchmarks/memory.py                  # 250 MB and 1 GB
    python benchmarks/memory.py --quick          # 25 MB and 100 MB, a smoke run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
from _common import (
    BenchmarkError,
    device_text,
    environment,
    markdown_table,
    write_results,
)

from napari_unet_loop.core.io.read import read_stack
from napari_unet_loop.core.model.modelfile import new_model, save_model
from napari_unet_loop.core.synthetic import make_membrane_stack

SIDE = 512
SLICE_BYTES = SIDE * SIDE
TARGET_RATIO = 1.10  # peak RSS of the large run within 10 % of the small one
TARGET_PEAK_MB = 1024


def write_stack(path: Path, megabytes: float) -> int:
    """An uncompressed uint8 Z×512×512 TIFF of about ``megabytes`` MB; returns its slices."""
    count = round(megabytes * 1e6 / SLICE_BYTES)
    base, _ = make_membrane_stack((8, SIDE, SIDE), seed=0)
    # Slices cycle through 8 distinct ones, shifted so that no two are identical.
    slices = (np.roll(base[z % 8], z // 8, axis=1) for z in range(count))
    with tifffile.TiffWriter(path, bigtiff=count * SLICE_BYTES > 2**31) as tif:
        tif.write(slices, shape=(count, SIDE, SIDE), dtype=np.uint8, photometric="minisblack")
    return count


def segment(source: Path, output: Path, model: Path, threads: int | None) -> dict:
    """Run the CLI in a child process; its wall time and peak resident memory."""
    command = [
        sys.executable,
        "-m",
        "napari_unet_loop.cli",
        "segment",
        str(source),
        "-o",
        str(output),
        "--model",
        str(model),
        "--device",
        "cpu",
    ]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    # stderr (the progress bar) goes to a file: a pipe nobody reads would fill and block it
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            lines = log.read().decode(errors="replace").strip().splitlines() or ["no output"]
            raise BenchmarkError(f"segment failed: {lines[-1]}")
    return {"seconds": wall, "peak_rss_mb": usage.ru_maxrss / 1024}  # ru_maxrss is in KiB


def measure(sizes: list[float], workdir: Path, threads: int | None) -> list[dict]:
    model = save_model(
        new_model(["interior", "membrane"], depth=2, base_channels=4, name="tiny"),
        workdir / "tiny.safetensors",
    )
    rows = []
    for megabytes in sizes:
        source, output = workdir / f"stack-{megabytes:g}MB.tif", workdir / "labels.tif"
        count = write_stack(source, megabytes)
        with read_stack(source) as stack:
            storage = stack.storage
        run = segment(source, output, model, threads)
        with read_stack(output) as labels:
            assert labels.shape == (count, SIDE, SIDE), labels.shape
        rows.append(
            {
                "input_mb": source.stat().st_size / 1e6,
                "slices": count,
                "storage": storage,
                "megapixels_per_s": count * SLICE_BYTES / 1e6 / run["seconds"],
                **run,
            }
        )
        source.unlink()
        output.unlink()
    return rows


def report(rows: list[dict], env: dict) -> str:
    small = rows[0]["peak_rss_mb"]
    table = markdown_table(
        ["input (MB)", "slices", "read as", "wall (s)", "MP/s", "peak RSS (MB)", "× smallest"],
        [
            [
                f"{r['input_mb']:.0f}",
                r["slices"],
                r["storage"],
                f"{r['seconds']:.1f}",
                f"{r['megapixels_per_s']:.1f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['peak_rss_mb'] / small:.3f}",
            ]
            for r in rows
        ],
    )
    largest = rows[-1]["peak_rss_mb"]
    verdict = (
        f"Largest/smallest peak RSS {largest / small:.3f} (target ≤ {TARGET_RATIO}); largest "
        f"peak {largest:.0f} MB (target < {TARGET_PEAK_MB} MB)."
    )
    return (
        f"Batch segmentation memory: `unet-loop segment` (tiny network, depth 2, base 4) "
        f"on {device_text(env)}.\n\n{table}\n\n{verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,1000", help="stack sizes in MB, comma list")
    parser.add_argument("--quick", action="store_true", help="25 and 100 MB (a smoke run)")
    parser.add_argument("--threads", type=int, help="torch threads in the child processes")
    parser.add_argument("--workdir", type=Path, help="where the stacks are written")
    args = parser.parse_args(argv)
    sizes = [25.0, 100.0] if args.quick else [float(s) for s in args.sizes.split(",")]
    try:
        with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
            rows = measure(sizes, Path(folder), args.threads)
    except BenchmarkError as exc:
        print(f"memory.py: {exc}", file=sys.stderr)
        return 2
    env = environment(torch.device("cpu"))
    text = report(rows, env)
    print(text)
    write_results(
        "memory-quick" if args.quick else "memory",
        {"environment": env, "runs": rows},
        f"# Memory\n\n{text}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

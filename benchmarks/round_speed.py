"""How long one Retrain round takes: the default round on k corrected 512² ISBI slices.

Runs ``core.rounds.correction_round`` with its defaults (what the Retrain button runs) from
the shipped ``em-membranes`` on k of the slices it never trained on (22-29), the other
held-out slices as context, and reports the wall time, the iterations and the time per
iteration. The CPU's fp32 matmul rate is timed in the same run, so the figure can be set
against other machines: a round's time is nearly all training steps, which scale with it.
Run it alone on the machine: other work inflates every figure.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _common import (
    add_common_options,
    cpu_matmul_gflops,
    device_text,
    environment,
    load_isbi,
    markdown_table,
    model_path,
    publish,
    run_script,
)

from napari_unet_loop.app.warm_up import warm_up
from napari_unet_loop.core.model.devices import get_device
from napari_unet_loop.core.model.modelfile import load_model
from napari_unet_loop.core.training.rounds import DEFAULT_ROUND, correction_round, run_round

HELD_OUT = range(22, 30)
TARGET_SECONDS = 20.0  # the loop issue's target for k <= 4 on two CPU cores


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, "isbi2012/")
    p.add_argument("--ks", default="1,2,4", help="numbers of corrected slices")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    volume, truth = load_isbi(args.data)
    model = load_model(model_path("em-membranes", args.model_dir))
    env = environment(get_device(DEFAULT_ROUND.device))  # the load before any work
    warm_up()
    matmul = cpu_matmul_gflops(2048, 3, ("fp32",)) if env["device"] == "cpu" else None
    rows, table = [], []
    for k in sorted({int(k) for k in args.ks.split(",")}):
        edited = list(HELD_OUT)[:k]
        context = [volume[z] for z in HELD_OUT if z not in edited]
        start = time.perf_counter()
        result = run_round(
            correction_round(
                model,
                [volume[z] for z in edited],
                [truth[z].astype(np.int16) for z in edited],
                context=context,
                settings=DEFAULT_ROUND,
            )
        )
        seconds = time.perf_counter() - start
        rows.append(
            {
                "k": k,
                "seconds": seconds,
                "iterations": result.iterations,
                "adopted": result.adopted,
                "trust": result.trust,
            }
        )
        table.append(
            [
                k,
                f"{seconds:.1f}",
                result.iterations,
                f"{seconds / max(result.iterations, 1):.3f}",
                "yes" if seconds <= TARGET_SECONDS else "no",
            ]
        )
        print(
            f"k={k}: {seconds:.1f} s, {result.iterations} iterations", file=sys.stderr, flush=True
        )
    markdown = "\n\n".join(
        [
            "# One Retrain round, timed",
            f"Measured on {device_text(env)}; the default round from `em-membranes` on k "
            "corrected 512² ISBI slices."
            + (
                f" This CPU's fp32 matmul rate, same run: {matmul['fp32_gflops']:.0f} GFLOP/s."
                if matmul
                else ""
            ),
            markdown_table(
                ["k", "round (s)", "iterations", "s per iteration", f"≤ {TARGET_SECONDS:.0f} s"],
                table,
            ),
        ]
    )
    publish(
        "round_speed",
        False,
        {"benchmark": "round_speed", "environment": env, "matmul": matmul, "rows": rows},
        markdown,
    )


def main(argv: list[str] | None = None) -> int:
    return run_script("round_speed.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

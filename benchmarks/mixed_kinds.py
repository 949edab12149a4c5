"""Retrain on one image of another kind amid the model's own kind: is the rest kept?

A user whose stack mixes kinds of image (a section with inverted contrast, a brightfield
image among fluorescence ones) corrects one image of the kind the model gets wrong and
presses Retrain. Two cases, three seeds each (which images are of the other kind):

- **isbi**: the shipped ``em-membranes`` on ISBI slices 22-29, two of them inverted; the
  user corrects one inverted slice; scored on the six others (own kind) and the other
  inverted slice (new kind), membrane Dice;
- **nuclei**: the shipped ``nuclei`` model on six nuclei test images and two grey
  blood-cell images; the user corrects one blood-cell image; scored on the nuclei images
  (own kind) and the other blood-cell image (new kind), nucleus Dice.

Each case runs the default round (what the Retrain button runs) and the same round without
replay (``replay=0``: how a round of a model wrong on its corrections ran before it replayed
other kinds of slice), side by side in one process. The rest is segmented with the model the
loop then holds (the previous one when the guard refused the round). "Sure result kept" is
the figure the round's status line gives: of what the previous model was sure of on the
replayed slices, the share the new model keeps.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from _common import (
    add_common_options,
    device_text,
    environment,
    load_isbi,
    load_nuclei,
    markdown_table,
    model_path,
    pixel_scores,
    publish,
    run_script,
    split_ids,
)
from _loop_scenarios import wbc_grey

from napari_unet_loop.app.warm_up import warm_up
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.model.devices import get_device
from napari_unet_loop.core.model.modelfile import Model, load_model
from napari_unet_loop.core.training.rounds import DEFAULT_ROUND, correction_round, run_round

SEEDS = 3
VARIANTS = {"default": DEFAULT_ROUND, "no replay": replace(DEFAULT_ROUND, replay=0.0)}


@dataclass
class Mixed:
    """Images of a stack: ``own`` the model's kind, ``other`` the kind it gets wrong (the
    first one is corrected, the second scored)."""

    name: str
    model: Model
    own: list[np.ndarray]
    own_truth: list[np.ndarray]
    other: list[np.ndarray]
    other_truth: list[np.ndarray]


def isbi_cases(data: Path, model_dir: Path | None) -> list[Mixed]:
    volume, truth = load_isbi(data)
    model = load_model(model_path("em-membranes", model_dir))
    held = list(range(22, 30))
    cases = []
    for seed in range(SEEDS):
        odd = [int(z) for z in np.random.default_rng(seed).choice(held, 2, replace=False)]
        own = [z for z in held if z not in odd]
        cases.append(
            Mixed(
                f"isbi, slices {odd[0]} and {odd[1]} inverted",
                model,
                [volume[z] for z in own],
                [truth[z] for z in own],
                [255 - volume[z] for z in odd],
                [truth[z] for z in odd],
            )
        )
    return cases


def nuclei_cases(data: Path, model_dir: Path | None) -> list[Mixed]:
    model = load_model(model_path("nuclei", model_dir))
    nuclei = [
        s
        for s in load_nuclei(data, split_ids("nuclei-test"))
        if s.image.ndim == 2 and s.image.shape == (256, 256)
    ][:6]
    cells = wbc_grey(data, model_dir, False)
    cases = []
    for seed in range(SEEDS):
        odd = [int(i) for i in np.random.default_rng(seed).choice(len(cells.images), 2, False)]
        cases.append(
            Mixed(
                f"nuclei, blood-cell images {odd[0]} and {odd[1]}",
                model,
                [s.image for s in nuclei],
                [s.classes for s in nuclei],
                [cells.images[i] for i in odd],
                [cells.truth[i] for i in odd],
            )
        )
    return cases


def foreground_dice(model: Model, images: list[np.ndarray], truth: list[np.ndarray]) -> float:
    """Pooled Dice of the model's second class (membrane, nucleus)."""
    predicted = [predict(image, model).labels for image in images]
    return pixel_scores(predicted, truth, model.class_names)["dice_pooled"][model.class_names[1]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, "isbi2012/, nuclei/ and wbc/")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = [*isbi_cases(args.data, args.model_dir), *nuclei_cases(args.data, args.model_dir)]
    env = environment(get_device(DEFAULT_ROUND.device))
    warm_up()
    rows, table = [], []
    for case in cases:
        own_before = foreground_dice(case.model, case.own, case.own_truth)
        other_before = foreground_dice(case.model, case.other[1:], case.other_truth[1:])
        for variant, settings in VARIANTS.items():
            print(f"{case.name}: {variant}…", file=sys.stderr, flush=True)
            start = time.perf_counter()
            result = run_round(
                correction_round(
                    case.model,
                    case.other[:1],
                    [case.other_truth[0].astype(np.int16)],
                    context=[*case.own, *case.other[1:]],
                    settings=settings,
                )
            )
            seconds = time.perf_counter() - start
            held = result.model if result.adopted else case.model
            row = {
                "case": case.name,
                "variant": variant,
                "own_before": own_before,
                "own_after": foreground_dice(held, case.own, case.own_truth),
                "other_before": other_before,
                "other_after": foreground_dice(held, case.other[1:], case.other_truth[1:]),
                "adopted": result.adopted,
                "trust": result.trust,
                "replay_share": result.replay_share,
                "kept": result.kept,
                "iterations": result.iterations,
                "seconds": seconds,
            }
            rows.append(row)
            table.append(
                [
                    case.name,
                    variant,
                    f"{own_before:.3f} → {row['own_after']:.3f}",
                    f"{other_before:.3f} → {row['other_after']:.3f}",
                    f"{result.replay_share:.2f}",
                    "—" if result.kept is None else f"{result.kept:.1%}",
                    "yes" if result.adopted else "no",
                    f"{seconds:.0f}",
                ]
            )
    markdown = "\n\n".join(
        [
            "# A correction of another kind of image amid the model's own kind",
            f"Measured on {device_text(env)}. Foreground Dice (membrane, nucleus) before → "
            "after one round on one corrected image of the other kind.",
            markdown_table(
                [
                    "case",
                    "round",
                    "own kind",
                    "other kind (not corrected)",
                    "replay share",
                    "sure result kept",
                    "adopted",
                    "round (s)",
                ],
                table,
            ),
        ]
    )
    publish(
        "mixed_kinds",
        False,
        {"benchmark": "mixed_kinds", "environment": env, "rows": rows},
        markdown,
    )


def main(argv: list[str] | None = None) -> int:
    return run_script("mixed_kinds.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""The correction loop, measured: do k corrected images make the *rest* better, and by how much
more than an ilastik-style random forest trained on the same corrections?

A simulated user opens images (scenarios a-e, see ``_loop_scenarios``), "corrects" k of them
(their ground truth, dense or as scribbles), presses Retrain once (``core.rounds``: the code
the Retrain button runs, with its defaults) and segments the images nobody corrected with the
model the loop then holds: the new one, or the previous one when the round's guard kept it.
Which images are corrected: a seeded random choice (several seeds), or the "correct next"
ranking (``core.uncertainty``) of the starting model, one order whose rounds run with as many
training seeds (the random choices' rounds all use seed 0). Every k of one choice is scored on the
same images: those its largest k leaves uncorrected. Beside each round, a random forest on
filter features (``_forest``) learns from exactly the same pixels.

Each scenario's rows go to ``benchmarks/results/loop-<scenario>.json`` as soon as it ends, so
scenarios can be run one at a time; the report (``loop.md``/``loop.json``) gathers every
scenario found there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np
import torch
from _common import (
    RESULTS,
    BenchmarkError,
    add_common_options,
    device_text,
    environment,
    publish,
    run_script,
)
from _forest import ForestBaseline, features
from _loop_report import report
from _loop_scenarios import SCENARIOS, Scenario, start_model
from _scribbles import scribble

from napari_unet_loop.app.warm_up import warm_up
from napari_unet_loop.core.evaluation.metrics import (
    ConfusionCounts,
    confusion_counts,
    object_metrics,
)
from napari_unet_loop.core.inference.postprocess import instance_labels, instance_options
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.inference.scale import automatic_factor
from napari_unet_loop.core.inference.uncertainty import (
    rank_slices,
    slice_descriptor,
    uncertainty,
)
from napari_unet_loop.core.io.atomic import atomic_output
from napari_unet_loop.core.model.channels import looks_rgb
from napari_unet_loop.core.model.devices import get_device
from napari_unet_loop.core.model.modelfile import Model
from napari_unet_loop.core.training.rounds import DEFAULT_ROUND, correction_round, run_round

MODES = ("dense", "scribbles")
CHOICES = ("random", "each", "ranked")
SCORED = 8  # at most this many uncorrected images are scored (spread over the rest)


def score(
    probabilities: list[np.ndarray],
    scenario: Scenario,
    indices: list[int],
    factors: list[float] | None = None,
) -> dict[int, dict]:
    """Per image: confusion counts, AP@0.5 (when objects matter), mean uncertainty and the
    descriptor "correct next" ranks by.

    Instances are split as Segment splits them at the image's scale ``factors`` (the forest
    works at the image's own scale: factor 1).
    """
    out = {}
    for p, i in zip(probabilities, indices, strict=True):
        factor = 1.0 if factors is None else factors[i]
        labels = p.argmax(axis=0).astype(np.uint8)
        entry = {
            "counts": confusion_counts(labels, scenario.truth[i], len(scenario.class_names)),
            "uncertainty": float(uncertainty(p).mean()),
            "descriptor": slice_descriptor(scenario.images[i], p),
        }
        if scenario.objects is not None:
            found = instance_labels(labels, probabilities=p, **instance_options(factor))
            entry["ap"] = object_metrics(found, scenario.objects[i]).average_precision
        out[i] = entry
    return out


def unet_probabilities(
    model: Model, scenario: Scenario, indices: list[int], factors: list[float]
) -> list[np.ndarray]:
    return [
        predict(
            scenario.images[i], model, rgb=looks_rgb(scenario.images[i]), scale=factors[i]
        ).probabilities
        for i in indices
    ]


def summary(scores: dict[int, dict], indices: list[int], scenario: Scenario) -> dict:
    """Pooled Dice per class and mean AP@0.5 over ``indices``."""
    counts = sum(
        (scores[i]["counts"] for i in indices), ConfusionCounts.zeros(len(scenario.class_names))
    )
    result = {"dice": dict(zip(scenario.class_names, counts.dice().tolist(), strict=True))}
    if scenario.objects is not None:
        result["ap"] = float(np.mean([scores[i]["ap"] for i in indices]))
    return result


def corrections(scenario: Scenario, edited: list[int], mode: str, seed: int) -> list:
    if mode == "dense":
        return [scenario.truth[i].astype(np.int16) for i in edited]
    return [scribble(scenario.truth[i], np.random.default_rng(seed * 1000 + i)) for i in edited]


def choices(
    scenario: Scenario, base_scores: dict[int, dict], seeds: int, each: bool
) -> list[tuple]:
    """(choice, seed, order): images are corrected in ``order``. "each" corrects every image
    alone (its seed is the image's index), for the single-correction target."""
    pool = list(range(len(scenario.images)))
    picked = [
        ("random", seed, [int(i) for i in np.random.default_rng(seed).permutation(pool)])
        for seed in range(seeds)
    ]
    if each:
        picked += [("each", i, [i, *(j for j in pool if j != i)]) for i in pool]
    if scenario.base is not None:
        ranking = rank_slices(
            {i: base_scores[i]["uncertainty"] for i in pool},
            descriptors={i: base_scores[i]["descriptor"] for i in pool},
        )
        # One order; its rounds repeat with training seeds 0.. so that its mean carries the
        # rounds' own noise, as the mean over random picks does.
        picked += [("ranked", seed, [s.z for s in ranking]) for seed in range(seeds)]
    return picked


def run_scenario(
    scenario: Scenario,
    ks: list[int],
    modes: list[str],
    seeds: int,
    each: bool,
    settings,
    save,
    only: set[str] | None = None,
    kept: Sequence[dict] = (),
) -> dict:
    """Every round of one scenario; ``save(part)`` runs after each, so a stopped run keeps
    what it measured. ``only``: run just these choices in ``modes``, keeping the ``kept``
    rows of the others (from an earlier run)."""
    base = start_model(scenario)
    everything = list(range(len(scenario.images)))
    if scenario.stack:  # Segment measures a stack once, on slices spread over it
        factors = [automatic_factor(base.provenance, scenario.images)] * len(scenario.images)
    else:
        factors = [automatic_factor(base.provenance, [image]) for image in scenario.images]
    print(
        f"[{scenario.key}] scale factors {sorted(set(round(f, 2) for f in factors))}",
        file=sys.stderr,
        flush=True,
    )
    base_scores = score(
        unet_probabilities(base, scenario, everything, factors), scenario, everything, factors
    )
    feature_maps = [features(image) for image in scenario.images]
    rows = [
        row
        for row in kept
        if only is not None and (row["choice"] not in only or row["mode"] not in (*modes, "-"))
    ]
    part = {
        "key": scenario.key,
        "description": scenario.description,
        "class_names": scenario.class_names,
        "foreground": scenario.foreground,
        "images": scenario.names,
        "objects": scenario.objects is not None,
        "scale_factors": factors,
        "rows": rows,
    }
    for choice, seed, order in choices(scenario, base_scores, seeds, each):
        if only is not None and choice not in only:
            continue
        max_k = 1 if choice == "each" else min(scenario.max_k, max(ks))
        rest = sorted(order[max_k:])
        rest = [rest[int(i)] for i in np.unique(np.linspace(0, len(rest) - 1, SCORED).round())]
        before = summary(base_scores, rest, scenario)
        rows.append(
            {
                "choice": choice,
                "seed": seed,
                "k": 0,
                "mode": "-",
                "method": "unet",
                "rest": len(rest),
                **before,
                "seconds": None,
            }
        )
        for k in [k for k in ks if 0 < k <= max_k]:
            edited = sorted(order[:k])
            unedited = [i for i in everything if i not in edited]
            context = [scenario.images[i] for i in unedited]
            for mode in modes if choice == "random" else ("dense",):
                targets = corrections(scenario, edited, mode, seed)
                label = f"[{scenario.key}] {choice} seed {seed}, k={k}, {mode}"
                print(f"{label}…", file=sys.stderr, flush=True)
                start = time.perf_counter()
                result = run_round(
                    correction_round(
                        base,
                        [scenario.images[i] for i in edited],
                        targets,
                        context=context,
                        settings=replace(settings, seed=seed) if choice == "ranked" else settings,
                        scale=[factors[i] for i in edited],
                        context_scale=[factors[i] for i in unedited],
                    )
                )
                seconds = time.perf_counter() - start
                current = result.model if result.adopted else base
                after = summary(
                    score(
                        unet_probabilities(current, scenario, rest, factors),
                        scenario,
                        rest,
                        factors,
                    ),
                    rest,
                    scenario,
                )
                row = {
                    "choice": choice,
                    "seed": seed,
                    "k": k,
                    "mode": mode,
                    "method": "unet",
                    "rest": len(rest),
                    **after,
                    "seconds": seconds,
                    "adopted": result.adopted,
                    "held_back": [result.before, result.after],
                    "held_back_each": [list(result.before_each), list(result.after_each)],
                    "iterations": result.iterations,
                    "batchnorm": result.batchnorm,
                    "replay_share": result.replay_share,
                    "trust": result.trust,
                }
                if not result.adopted:
                    rejected = score(
                        unet_probabilities(result.model, scenario, rest, factors),
                        scenario,
                        rest,
                        factors,
                    )
                    row["rejected_round"] = summary(rejected, rest, scenario)
                rows.append(row)
                start = time.perf_counter()
                forest = ForestBaseline(len(scenario.class_names), seed)
                forest.fit([feature_maps[i] for i in edited], targets)
                forest_scores = score(
                    [forest.probabilities(feature_maps[i]) for i in rest], scenario, rest
                )
                rows.append(
                    {
                        "choice": choice,
                        "seed": seed,
                        "k": k,
                        "mode": mode,
                        "method": "forest",
                        "rest": len(rest),
                        **summary(forest_scores, rest, scenario),
                        "seconds": time.perf_counter() - start,
                    }
                )
                fg = scenario.foreground
                print(
                    f"{label}: unet {row['dice'][fg]:.4f} (before {before['dice'][fg]:.4f}, "
                    f"adopted {result.adopted}, {seconds:.0f} s), forest "
                    f"{rows[-1]['dice'][fg]:.4f}",
                    file=sys.stderr,
                    flush=True,
                )
                save(part)
    return part


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, "isbi2012/, nuclei/ and wbc/")
    p.add_argument("--scenarios", default="a,b,c,d,e", help="comma list of a-e (default: all)")
    p.add_argument("--ks", default="0,1,2,4,8", help="numbers of corrected images")
    p.add_argument("--modes", default="dense,scribbles", help="dense, scribbles or both")
    p.add_argument("--seeds", type=int, default=3, help="random choices of what to correct")
    p.add_argument(
        "--each",
        action="store_true",
        help="also correct every image alone (k = 1, dense), one round each",
    )
    p.add_argument(
        "--choices",
        help="run only these choices (comma list of random, each, ranked) in --modes, keeping "
        "the other rows from the scenario's earlier results",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="gather the scenario results already written and print the report",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run on 128 px crops and a few images (numbers mean nothing)",
    )
    return p.parse_args(argv)


def _list(text: str, allowed, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or set(items) - set(allowed):
        raise BenchmarkError(f"bad --{what} {text!r}: choose from {', '.join(allowed)}")
    return items


def run(args: argparse.Namespace) -> None:
    keys = _list(args.scenarios, SCENARIOS, "scenarios")
    modes = _list(args.modes, MODES, "modes")
    try:
        ks = sorted({int(k) for k in args.ks.split(",")} | {0})
    except ValueError:
        raise BenchmarkError(f"bad --ks {args.ks!r}: write e.g. 0,1,2,4,8") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    suffix = "-quick" if args.quick else ""
    only = set(_list(args.choices, CHOICES, "choices")) if args.choices else None
    settings = DEFAULT_ROUND
    if not args.report_only:
        warm_up()  # the Retrain widget warms torch up before the first round too
        for key in keys:
            scenario = SCENARIOS[key](args.data, args.model_dir, args.quick)
            env = environment(get_device(settings.device))
            path = RESULTS / f"loop-{key}{suffix}.json"

            def save(part: dict, env=env, path=path) -> None:
                part.update(environment=env, settings=asdict(settings), seeds=args.seeds)
                RESULTS.mkdir(parents=True, exist_ok=True)
                with atomic_output(path) as tmp:
                    tmp.write_text(json.dumps(part, indent=2) + "\n", encoding="utf-8")

            kept = json.loads(path.read_text())["rows"] if only and path.is_file() else []
            save(
                run_scenario(scenario, ks, modes, args.seeds, args.each, settings, save, only, kept)
            )
    parts = []
    for key in SCENARIOS:
        path = RESULTS / f"loop-{key}{suffix}.json"
        if path.is_file():
            parts.append(json.loads(path.read_text()))
    if not parts:
        raise BenchmarkError("no scenario results yet: run without --report-only first")
    payload = {"benchmark": "loop", "quick": args.quick, "scenarios": parts}
    publish("loop", args.quick, payload, report(parts, device_text(parts[-1]["environment"])))


def main(argv: list[str] | None = None) -> int:
    return run_script("loop.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""The correction loop, measured: how far do k corrected slices lift a model on new data?

A simulated user segments a stack the model was not trained on, "corrects" k slices (their
ground truth replaces the prediction), presses Retrain with the default settings, and we score
the slices nobody corrected. Every k starts from the same base model. Retraining runs the code
the Retrain widget runs (see :func:`retrain_like_widget`). Prints a Markdown table and writes
benchmarks/results/loop.json/.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from _common import (
    DEFAULT_DATA,
    ISBI_IMAGES,
    ISBI_LABELS,
    BenchmarkError,
    device_text,
    environment,
    load_isbi,
    load_wbc,
    markdown_table,
    model_origin,
    model_path,
    publish,
    require,
    run_script,
    split_ids,
)

from napari_unet_loop.core.corrections import training_pairs
from napari_unet_loop.core.devices import get_device
from napari_unet_loop.core.inference import predict
from napari_unet_loop.core.metrics import confusion_counts
from napari_unet_loop.core.modelfile import Model, load_model, new_model, save_model
from napari_unet_loop.core.training import DEFAULT_RETRAIN, TrainConfig, run_to_end, train
from napari_unet_loop.loop import retrain, warm_up

CASES = {
    "a": "EM model trained on ISBI slices 0-3, corrected with slices from {pool}",
    "b": "shipped nuclei model on grey WBC test images ({pool}; nucleus vs the rest)",
    "c": "new model (default architecture) trained on the k corrected EM slices only "
         "(from {pool})",
}
SEED = 0  # orders the slices a user corrects
BASE_SLICES = [0, 1, 2, 3]
# The case (a) base: small on purpose (a few minutes on 2 CPU cores), so corrections have room.
BASE_CONFIG = TrainConfig(iterations=400, patch_size=128, batch_size=4, seed=0)
EM_POOL = list(range(4, 30))
WBC_IMAGES, WBC_SHAPE = 24, (120, 120)
WBC_NUCLEUS_MAP = "255:1,*:0"  # nucleus (255) vs cytoplasm, cells and background

# --quick: a smoke run of every step at toy sizes; its numbers mean nothing.
QUICK_CROP = 128
QUICK_BASE_CONFIG = TrainConfig(iterations=10, patch_size=64, batch_size=2, seed=0)
QUICK_RETRAIN_ITERATIONS = 3
QUICK_EM_POOL = list(range(4, 10))
QUICK_WBC_IMAGES = 6


@dataclass
class Scenario:
    """A stack a user opened, its true classes, and the slices that may be corrected or scored."""

    images: np.ndarray
    truth: np.ndarray
    class_names: list[str]
    pool: list[int]
    names: list[str]

    @property
    def foreground(self) -> str:
        return self.class_names[1]


def retrain_like_widget(
    model: Model, image: np.ndarray, labels: np.ndarray, edited: list[int], config: TrainConfig
) -> tuple[Model, float]:
    """What the Retrain button runs, timed: dense training pairs, then ``loop.retrain``.

    As ``widgets/_retrain_job.make_job`` builds it with the widget's defaults: dense mode
    (every pixel of an edited slice is truth), ``DEFAULT_RETRAIN`` with the iterations field
    left as is, and no validation pairs (the "validate on" box starts unchecked). Returns the
    new model and the wall time in seconds.
    """
    start = time.perf_counter()
    images, targets = training_pairs(
        image, labels, edited, num_classes=model.num_classes, painted={}, sparse=False
    )
    trained = run_to_end(retrain(model, images, targets, config, None, None))
    return trained, time.perf_counter() - start


def foreground_dice(model: Model, scenario: Scenario, scored: list[int]) -> dict[str, float]:
    """Dice per class of ``model`` on the ``scored`` slices, counts pooled over them."""
    labels = predict(scenario.images[scored], model).labels
    counts = confusion_counts(labels, scenario.truth[scored], len(scenario.class_names))
    return dict(zip(scenario.class_names, counts.dice().tolist(), strict=True))


def em_scenario(data: Path, quick: bool) -> Scenario:
    volume, truth = load_isbi(data)
    if quick:
        volume, truth = volume[:, :QUICK_CROP, :QUICK_CROP], truth[:, :QUICK_CROP, :QUICK_CROP]
    pool = QUICK_EM_POOL if quick else EM_POOL
    names = [f"slice {z}" for z in range(len(volume))]
    return Scenario(volume, truth, ["interior", "membrane"], pool, names)


def wbc_scenario(data: Path, quick: bool) -> Scenario:
    """The first WBC test images of one size (a stack, as a user would open them), in grey.

    Grey is the mean of R, G and B: what Segment feeds a one-channel model given colour.
    """
    wanted = QUICK_WBC_IMAGES if quick else WBC_IMAGES
    chosen = []
    for name in split_ids("wbc-test"):
        if name.startswith("dataset1/"):
            (sample,) = load_wbc(data, [name], WBC_NUCLEUS_MAP)
            if sample.image.shape[:2] == WBC_SHAPE:
                chosen.append(sample)
        if len(chosen) == wanted:
            break
    if len(chosen) < wanted:
        raise BenchmarkError(f"only {len(chosen)} wbc test images are {WBC_SHAPE} px")
    grey = np.stack([s.image[..., :3].astype(np.float32).mean(axis=-1) for s in chosen])
    truth = np.stack([s.classes for s in chosen])
    pool = list(range(len(chosen)))
    return Scenario(grey, truth, ["background", "nucleus"], pool, [s.name for s in chosen])


def em_base(scenario: Scenario, cache: Path, quick: bool, fresh: bool) -> tuple[Model, dict]:
    """The case (a) base model, trained on ISBI slices 0-3, or reused from the cache."""
    config = QUICK_BASE_CONFIG if quick else BASE_CONFIG
    key = f"loop-em-base-s0-3-it{config.iterations}-p{config.patch_size}{'-quick' if quick else ''}"
    path = cache / f"{key}.safetensors"
    cached = path.is_file() and not fresh
    if not cached:
        print(f"training the case (a) base model ({config.iterations} iterations)…",
              file=sys.stderr, flush=True)
        updates = train(
            new_model(scenario.class_names, name="loop-em-base"),
            [scenario.images[z] for z in BASE_SLICES], [scenario.truth[z] for z in BASE_SLICES],
            config=config,
        )
        cache.mkdir(parents=True, exist_ok=True)
        save_model(run_to_end(updates), path)
    model = load_model(path)
    seconds = model.provenance["training"][-1]["seconds"]
    info = {"slices": BASE_SLICES, "config": config.to_dict(), "train_seconds": seconds,
            "reused_from_cache": cached}
    return model, info


def run_case(
    case: str, scenario: Scenario, base: Model | None, ks: list[int], config: TrainConfig
) -> list[dict]:
    """One row per k; ``base`` None means case (c): a new network per k."""
    order = [scenario.pool[i] for i in np.random.default_rng(SEED).permutation(len(scenario.pool))]
    scored = sorted(order[max(ks):])  # the same slices for every k: none of them is ever corrected
    rows = []
    for k in ks:
        edited = sorted(order[:k])
        start_model = base if base is not None else new_model(scenario.class_names, name="scratch")
        print(f"case {case}, k={k}…", file=sys.stderr, flush=True)
        seconds = None
        if k == 0:
            model, note = start_model, "untrained" if base is None else "base model"
        else:
            # Only the edited slices of the labels layer are read in dense mode, so the others
            # stay empty here instead of holding the first segmentation.
            labels = np.zeros(scenario.truth.shape, dtype=np.uint8)
            labels[edited] = scenario.truth[edited]
            model, seconds = retrain_like_widget(start_model, scenario.images, labels, edited,
                                                 config)
            note = "retrained" if base is not None else "trained from scratch"
        dice = foreground_dice(model, scenario, scored)
        rows.append({
            "case": case, "k": k, "corrected": [scenario.names[z] for z in edited],
            "scored": len(scored), "foreground": scenario.foreground,
            "dice": dice[scenario.foreground], "dice_per_class": dice,
            "retrain_seconds": seconds, "note": note,
        })
    return rows


def report(rows: list[dict], cases: dict[str, dict], env: dict, config: TrainConfig) -> str:
    table = markdown_table(
        ["case", "k", "corrected", "Dice on the uncorrected rest", "retrain wall time (s)"],
        [
            [r["case"], r["k"], ", ".join(r["corrected"]) or f"— ({r['note']})",
             f"{r['dice']:.4f} ({r['foreground']}, {r['scored']} {cases[r['case']]['unit']})",
             "—" if r["retrain_seconds"] is None else f"{r['retrain_seconds']:.1f}"]
            for r in rows
        ],
    )
    lines = [f"- **{key}**: {info['description']}{_base_text(info)}" for key, info in cases.items()]
    settings = ", ".join(
        f"{k}={v}" for k, v in config.to_dict().items()
        if k in ("iterations", "patch_size", "batch_size", "learning_rate", "augment")
    )
    return "\n\n".join([
        "# The correction loop, measured",
        f"Measured on {device_text(env)}. Retrain = the widget's code path: dense training "
        f"pairs (`core.corrections.training_pairs`), `loop.retrain` with {settings}, no "
        "validation pairs (the widget's \"validate on\" box starts unchecked). Every k starts "
        "from the same base model; the corrected slices are the first k of a seeded "
        "permutation, and every k is scored on the same slices (those no k corrects), Dice "
        "with pixel counts pooled over them.",
        table,
        "\n".join(lines),
    ])


def _base_text(info: dict) -> str:
    if "train_seconds" in info:
        base = info["config"]
        how = "reused from the cache" if info["reused_from_cache"] else "trained in this run"
        return (f"; base: {base['iterations']} iterations of {base['batch_size']} × "
                f"{base['patch_size']}² px patches, {info['train_seconds']:.0f} s ({how})")
    return f"; base: {info['base']}" if "base" in info else ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="folder holding isbi2012/ and wbc/ (default: %(default)s)")
    p.add_argument("--cases", default="a,b,c", help="comma list of a, b, c (default: a,b,c)")
    p.add_argument("--ks", default="0,1,2,4", help="numbers of corrected slices (default: 0,1,2,4)")
    p.add_argument("--model-dir", type=Path,
                   help="load nuclei.safetensors from this folder instead of the shipped one")
    p.add_argument("--cache", type=Path,
                   default=Path(tempfile.gettempdir()) / "napari-unet-loop-benchmarks",
                   help="where the case (a) base model is kept (default: %(default)s)")
    p.add_argument("--retrain-base", action="store_true",
                   help="train the case (a) base model again even if it is cached")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 128 px crops, few slices, a few iterations (numbers mean "
                        "nothing; written to loop-quick.json)")
    return p.parse_args(argv)


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise BenchmarkError(f"bad --ks {text!r}: write e.g. 0,1,2,4") from None
    if not ks or ks[0] < 0:
        raise BenchmarkError(f"bad --ks {text!r}: numbers of slices, 0 or more")
    return ks


def run(args: argparse.Namespace) -> None:
    cases = sorted({c.strip() for c in args.cases.split(",") if c.strip()})
    if not cases or set(cases) - set(CASES):
        raise BenchmarkError(f"bad --cases {args.cases!r}: choose from a, b, c")
    ks = parse_ks(args.ks)
    if {"a", "c"} & set(cases):
        require(args.data, ISBI_IMAGES, ISBI_LABELS)
    if "b" in cases:
        require(args.data, "wbc/dataset1")
        nuclei_path = model_path("nuclei", args.model_dir)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment(get_device(DEFAULT_RETRAIN.device))
    config = DEFAULT_RETRAIN
    if args.quick:
        # As a user would change the iterations field: the only setting the widget exposes.
        config = replace(DEFAULT_RETRAIN, iterations=QUICK_RETRAIN_ITERATIONS)
    warm_up()  # the widget warms torch up before the first Retrain too
    rows, described = [], {}
    em = em_scenario(args.data, args.quick) if {"a", "c"} & set(cases) else None
    for case in cases:
        if case == "b":
            scenario = wbc_scenario(args.data, args.quick)
            base = load_model(nuclei_path)
            if base.num_classes != 2 or base.in_channels != 1:
                raise BenchmarkError(f"{nuclei_path.name}: expected a grey two-class model")
            extra = {"base": model_origin(nuclei_path)}
        else:
            scenario = em
            base, extra = None, {}
            if case == "a":
                base, extra = em_base(em, args.cache, args.quick, args.retrain_base)
        if max(ks) >= len(scenario.pool):
            raise BenchmarkError(f"k={max(ks)} leaves nothing to score in case {case}")
        unit = "images" if case == "b" else "slices"
        names = [scenario.names[z] for z in scenario.pool]
        pool = f"{names[0]} to {names[-1]}, {len(names)} {unit}"
        described[case] = {"description": CASES[case].format(pool=pool), "unit": unit,
                           "pool": names, **extra}
        rows += run_case(case, scenario, base, ks, config)
    markdown = report(rows, described, env, config)
    payload = {"benchmark": "loop", "quick": args.quick, "environment": env,
               "retrain_config": config.to_dict(), "validation": None, "seed": SEED,
               "cases": described, "rows": rows}
    publish("loop", args.quick, payload, markdown)


def main(argv: list[str] | None = None) -> int:
    return run_script("loop.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Held-out accuracy of the shipped models, and how fast they segment.

Each model is scored on data its recipe never trained on nor chose weights by: em-membranes on
ISBI 2012 training slices 24-29 (the recipe trains on 0-21 and validates on 22-23), nuclei on
the nuclei-test split, wbc on the wbc-test split (recipes/splits). Prints Markdown tables and
writes benchmarks/results/accuracy.json/.md; ``--update-models`` also stores the scores in each
model file's provenance. The robustness table scores each model on its split scaled 0.5× and
2×, blurred, noisy and with contrast and gamma changed, at scale 1 and at the automatic object
scale (``_robustness.py``). The bundled samples (File ▸ Open Sample, ``sample_data/``) are
scored with the model each is made for, so a user's first Segment is known to look right.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from _common import (
    ISBI_IMAGES,
    ISBI_LABELS,
    BenchmarkError,
    Sample,
    add_common_options,
    device_text,
    environment,
    fmt,
    load_isbi,
    load_nuclei,
    load_wbc,
    markdown_table,
    megapixels,
    model_origin,
    model_path,
    pixel_scores,
    publish,
    require,
    run_script,
    split_ids,
)
from _robustness import CHANGES, robustness, robustness_table

from napari_unet_loop._sample_data import load_sample
from napari_unet_loop.core.evaluation.metrics import (
    adapted_rand_error,
    object_metrics,
    pixel_error,
    variation_of_information,
)
from napari_unet_loop.core.inference.postprocess import METHODS, instance_labels
from napari_unet_loop.core.inference.predict import Prediction, predict
from napari_unet_loop.core.model.devices import get_device
from napari_unet_loop.core.model.modelfile import Model, load_model, save_model

MODELS = ("em-membranes", "nuclei", "wbc")
NEEDS = {
    "em-membranes": (ISBI_IMAGES, ISBI_LABELS),
    "nuclei": ("nuclei/images", "nuclei/masks"),
    "wbc": ("wbc/dataset1", "wbc/dataset2"),
}
CLASSES = {"em-membranes": 2, "nuclei": 2, "wbc": 3}
EM_HELD_OUT = list(range(24, 30))
QUICK_IMAGES = 2
# The bundled samples and the model each is made for; instance labels count as one class.
SAMPLES = {"em_membranes": "em-membranes", "nuclei": "nuclei"}

# Published ISBI 2012 results to read ours against (see the notes printed with them).
ANCHORS = [
    {
        "result": "U-Net (Ronneberger et al. 2015, Table 1)",
        "evaluated_on": "ISBI 2012 hidden test set (30 slices, scored by the organisers)",
        "pixel_error": 0.0611,
        "rand_error": 0.0382,
        "warping_error": 0.000353,
        "dice": None,
        "training": "10 h on one NVIDIA Titan (6 GB)",
    },
    {
        "result": "NVIDIA DeepLearningExamples UNet_Medical (TF2)",
        "evaluated_on": "ISBI 2012 training set, 5-fold cross-validation",
        "pixel_error": None,
        "rand_error": None,
        "warping_error": None,
        "dice": 0.89,
        "training": "6400 it × batch 8 per fold: 21 min on one A100 (TF32)",
    },
]
ANCHOR_NOTES = [
    "Data: the U-Net paper is scored on the challenge's 30 test slices, whose labels were never "
    "released; ours on 6 held-out slices (24-29) of the 30-slice training volume, next to the "
    "training slices 0-21 and validation slices 22-23 (neighbouring serial sections look "
    "alike, which flatters us).",
    "Rand error: the paper's is the challenge's foreground-restricted Rand error, computed by the "
    "organisers' script from the submitted probability maps; ours (core.metrics) also leaves "
    "true membrane pixels out, but scores the argmax map and counts each predicted membrane "
    "pixel as its own segment (SNEMI3D convention): same kind of score, not digit for digit. "
    "Warping error is not implemented here.",
    "Dice: NVIDIA's 0.89 is a soft Dice (softmax probabilities against one-hot truth, squared "
    "terms in the denominator) averaged over both classes and over images; ours is the "
    "thresholded (argmax) Dice, here the mean of the two classes' per-slice mean.",
    "Split: NVIDIA's is the mean over 5 folds (6 validation slices each, 24 for training); ours "
    "is one fixed split (train 0-21, validation 22-23, test 24-29), so it carries more chance.",
    "Compute: both published models are full-width U-Nets (64 base channels) trained on a GPU; "
    "the shipped model is a small one trained on a CPU (training column).",
]


@dataclass
class HeldOut:
    """The held-out images of one model; ``stack`` predicts them as one Z×Y×X stack."""

    description: str
    samples: list[Sample]
    rgb: bool
    stack: bool = False


def held_out(name: str, data: Path, quick: bool) -> HeldOut:
    limit = QUICK_IMAGES if quick else None
    if name == "em-membranes":
        volume, truth = load_isbi(data)
        slices = EM_HELD_OUT[:limit]
        samples = [Sample(f"slice {z}", volume[z], truth[z]) for z in slices]
        return HeldOut(f"ISBI 2012 train slices {slices[0]}-{slices[-1]}", samples, False, True)
    ids = split_ids(f"{name}-test")[:limit]
    if name == "nuclei":
        return HeldOut(f"nuclei-test split ({len(ids)} images)", load_nuclei(data, ids), False)
    return HeldOut(f"wbc-test split ({len(ids)} images)", load_wbc(data, ids), True)


def object_scores(predictions: list[Prediction], samples: list[Sample], method: str) -> dict:
    """Object precision/recall/F1/AP@0.5, matched per image and counted over the split.

    Instances come from the class map and the probabilities, as Segment and batch make them.
    """
    tp = fp = fn = 0
    for pred, sample in zip(predictions, samples, strict=True):
        instances = instance_labels(
            pred.labels, (1,), method=method, probabilities=pred.probabilities
        )
        scores = object_metrics(instances, sample.instances)
        tp, fp, fn = tp + scores.tp, fp + scores.fp, fn + scores.fn

    def ratio(num: int, den: int) -> float:
        return num / den if den else float(tp + fp + fn == 0)  # the package's empty rule

    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "ap_50": ratio(tp, tp + fp + fn),
    }


def training_summary(model: Model) -> str:
    """The model's last training run from its provenance, in one line."""
    runs = model.provenance.get("training")
    if not isinstance(runs, list) or not runs:
        return "not recorded"
    run = runs[-1]
    config = run.get("config", {})
    patch = config.get("patch_size", "?")
    seconds = float(run.get("seconds", 0))
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    return (
        f"{run.get('iterations', '?')} it × batch {run.get('batch_size_used', '?')} × {patch}² px, "
        f"depth {model.config.depth}, {model.config.base_channels} base channels, "
        f"{took} on {run.get('device', '?')}"
    )


def evaluate(name: str, path: Path, held: HeldOut, device: torch.device) -> dict:
    model = load_model(path)
    if model.num_classes != CLASSES[name]:
        raise BenchmarkError(
            f"{path.name}: {model.num_classes} classes, but {name} data has {CLASSES[name]}"
        )
    images = [s.image for s in held.samples]
    # The first forward pass of a process pays one-off set-up: keep it out of the timing.
    predict(images[0][:64, :64], model, device=device, rgb=held.rgb)
    start = time.perf_counter()
    if held.stack:
        predictions = []
        preds = list(predict(np.stack(images), model, device=device, rgb=False).labels)
    else:
        predictions = [predict(im, model, device=device, rgb=held.rgb) for im in images]
        preds = [p.labels for p in predictions]
    seconds = time.perf_counter() - start
    mp = megapixels(images, held.rgb)
    truths = [s.classes for s in held.samples]
    result = {
        "model": model_origin(path),
        "held_out": held.description,
        "class_names": list(model.class_names),
        **pixel_scores(preds, truths, model.class_names),
        "megapixels": mp,
        "predict_seconds": seconds,
        "seconds_per_megapixel": seconds / mp,
        "training": training_summary(model),
    }
    if name == "em-membranes":
        pred_stack, truth_stack = np.stack(preds), np.stack(truths)
        result["pixel_error"] = pixel_error(pred_stack, truth_stack)
        result["adapted_rand_error"] = adapted_rand_error(pred_stack, truth_stack)
        vi = variation_of_information(pred_stack, truth_stack)
        result["variation_of_information"] = {"split": vi.split, "merge": vi.merge}
        result["vi"] = vi.total
    if held.samples[0].instances is not None:
        result["objects"] = {m: object_scores(predictions, held.samples, m) for m in METHODS}
    return result


def sample_scores(name: str, path: Path, device: torch.device) -> dict:
    """Dice/IoU of ``path``'s model on bundled sample ``name``, segmented as one stack."""
    model = load_model(path)
    image, labels = load_sample(name)
    truth = np.minimum(labels, model.num_classes - 1)  # nuclei: every id is "nucleus"
    predicted = predict(image, model, device=device, rgb=False).labels
    return {
        "model": SAMPLES[name],
        "shape": list(image.shape),
        **pixel_scores(list(predicted), list(truth), model.class_names),
    }


def held_out_metrics(result: dict) -> dict:
    """What goes into a model file: the scores (rounded), not the machine-dependent timing."""
    keep = (
        "held_out",
        "images",
        "dice_pooled",
        "dice_mean",
        "iou_pooled",
        "iou_mean",
        "pixel_accuracy",
        "pixel_error",
        "adapted_rand_error",
        "variation_of_information",
        "objects",
    )

    def rounded(value):
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return round(value, 4) if isinstance(value, float) else value

    metrics = {k: rounded(result[k]) for k in keep if k in result}
    metrics["note"] = "pooled = counts summed over the split; mean = mean of per-image scores"
    metrics["evaluated"] = datetime.now(UTC).isoformat(timespec="seconds")
    metrics["by"] = "benchmarks/accuracy.py"
    return metrics


def update_model_file(path: Path, result: dict) -> None:
    """Record the held-out scores in the model file's provenance (fp16 weights, as shipped)."""
    model = load_model(path)
    model.provenance["held_out_metrics"] = held_out_metrics(result)
    save_model(model, path, half=True)


def report(results: dict[str, dict], env: dict, samples: dict[str, dict] | None = None) -> str:
    """The Markdown report: per-class scores, whole-split scores, objects, anchors."""
    parts = [
        "# Held-out accuracy of the shipped models",
        f"Measured on {device_text(env)}. *Pooled*: pixel counts summed over the whole "
        "held-out split, then one Dice/IoU. *Mean*: the average of per-image (per-slice) scores.",
    ]
    rows = [
        [
            name,
            r["held_out"],
            c,
            fmt(r["dice_pooled"][c]),
            fmt(r["dice_mean"][c]),
            fmt(r["iou_pooled"][c]),
            fmt(r["iou_mean"][c]),
        ]
        for name, r in results.items()
        for c in r["class_names"]
    ]
    parts.append(
        markdown_table(
            [
                "model",
                "held-out data",
                "class",
                "Dice pooled",
                "Dice mean",
                "IoU pooled",
                "IoU mean",
            ],
            rows,
        )
    )
    rows = [
        [
            name,
            r["images"],
            fmt(r["pixel_accuracy"]),
            fmt(r.get("pixel_error")),
            fmt(r.get("adapted_rand_error")),
            fmt(r.get("vi")),
            fmt(r["seconds_per_megapixel"], 2),
            fmt(r["megapixels"], 2),
        ]
        for name, r in results.items()
    ]
    parts.append(
        markdown_table(
            [
                "model",
                "images",
                "pixel accuracy",
                "pixel error",
                "adapted Rand error",
                "VI (bits)",
                "predict s / MP",
                "MP",
            ],
            rows,
        )
    )
    rows = [
        [
            name,
            method,
            o["tp"],
            o["fp"],
            o["fn"],
            fmt(o["precision"]),
            fmt(o["recall"]),
            fmt(o["f1"]),
            fmt(o["ap_50"]),
        ]
        for name, r in results.items()
        for method, o in r.get("objects", {}).items()
    ]
    if rows:
        parts.append(
            "Objects: `core.inference.postprocess.instance_labels` of the predicted "
            "class map and probabilities, matched one-to-one at IoU ≥ 0.5 per image, "
            "counts summed over the split."
        )
        parts.append(
            markdown_table(
                ["model", "instances", "TP", "FP", "FN", "precision", "recall", "F1", "AP@0.5"],
                rows,
            )
        )
    robust = {name: r for name, r in results.items() if "robustness" in r}
    if robust:
        parts += robustness_section(robust)
    if samples:
        parts += samples_section(samples)
    if "em-membranes" in results:
        parts += anchors(results["em-membranes"])
    return "\n\n".join(parts)


def samples_section(samples: dict[str, dict]) -> list[str]:
    rows = [
        [
            name,
            r["model"],
            "×".join(map(str, r["shape"])),
            c,
            fmt(r["dice_pooled"][c]),
            fmt(r["dice_mean"][c]),
            fmt(r["iou_pooled"][c]),
        ]
        for name, r in samples.items()
        for c in r["dice_pooled"]
    ]
    header = ["sample", "model", "shape", "class", "Dice pooled", "Dice mean", "IoU pooled"]
    return [
        "## Bundled samples",
        "File ▸ Open Sample's stacks (`sample_data/make_samples.py`, generated by the project), "
        "segmented with the model each is made for, scale 1.",
        markdown_table(header, rows),
    ]


def robustness_section(results: dict[str, dict]) -> list[str]:
    parts = [
        "## Robustness",
        "Each held-out split changed as a user's images may differ from the training images "
        f"({', '.join(c.name for c in CHANGES[1:])}), stored back in the image's own type. "
        "Scale changes resize the truth too (nearest neighbour). Each cell is *scale 1 / auto*: "
        "segmented as it is, and at the factor the automatic object scale picks "
        "(`core.inference.scale`, as Segment, Batch and `unet-loop segment` do); *auto factor* "
        "is that factor (median and range over images). Dice is the mean over images; AP@0.5 "
        "from the watershed instances, counts summed over the images; VI = split + merge.",
    ]
    for name, r in results.items():
        robust = r["robustness"]
        parts.append(f"**{name}**: {robust['held_out']}")
        parts.append(robustness_table(robust["changes"], r["class_names"]))
    return parts


def anchors(em: dict) -> list[str]:
    ours_dice = float(np.mean(list(em["dice_mean"].values())))
    rows = [
        [
            "ours: em-membranes",
            em["held_out"],
            fmt(em["pixel_error"]),
            fmt(em["adapted_rand_error"]),
            "—",
            f"{ours_dice:.4f} (argmax)",
            em["training"],
        ]
    ]
    rows += [
        [
            a["result"],
            a["evaluated_on"],
            fmt(a["pixel_error"]),
            fmt(a["rand_error"]),
            fmt(a["warping_error"], 6),
            "—" if a["dice"] is None else f"{a['dice']:.2f} (soft)",
            a["training"],
        ]
        for a in ANCHORS
    ]
    table = markdown_table(
        [
            "result",
            "evaluated on",
            "pixel error",
            "Rand error",
            "warping error",
            "two-class Dice",
            "training",
        ],
        rows,
    )
    notes = "\n".join(f"- {note}" for note in ANCHOR_NOTES)
    return ["## Published anchors (ISBI 2012)", table, "How they differ from ours:\n" + notes]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, "isbi2012/, nuclei/ and wbc/")
    p.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma list of models to evaluate (default: %(default)s)",
    )
    p.add_argument("--device", default="cpu", help="device to predict on (default: %(default)s)")
    p.add_argument(
        "--update-models",
        action="store_true",
        help="write the held-out scores into each model file's provenance",
    )
    p.add_argument(
        "--robustness",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score each model on its split scaled, blurred, noisy, with contrast and "
        "gamma changed, at scale 1 and auto (default: %(default)s)",
    )
    p.add_argument(
        "--robustness-images",
        type=int,
        metavar="N",
        help="robustness on at most N images of each split, spread evenly (default: all)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: the first {QUICK_IMAGES} images of each split only",
    )
    return p.parse_args(argv)


def robustness_of(path: Path, held: HeldOut, args: argparse.Namespace, device) -> dict:
    """The robustness rows of one model, on at most ``--robustness-images`` images spread
    evenly over its held-out split."""
    samples = held.samples
    if args.robustness_images is not None and args.robustness_images < len(samples):
        picks = np.linspace(0, len(samples) - 1, args.robustness_images).round().astype(int)
        samples = [samples[i] for i in picks]
    subset = "" if len(samples) == len(held.samples) else f", {len(samples)} images spread over it"
    changes = robustness(load_model(path), samples, rgb=held.rgb, stack=held.stack, device=device)
    return {
        "held_out": held.description + subset,
        "images": [s.name for s in samples],
        "changes": changes,
    }


def run(args: argparse.Namespace) -> None:
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown or not names:
        raise BenchmarkError(f"unknown model(s) {unknown}: choose from {', '.join(MODELS)}")
    if args.update_models and args.quick:
        raise BenchmarkError("--update-models records full-split scores: drop --quick")
    if args.robustness_images is not None and args.robustness_images < 1:
        raise BenchmarkError(
            f"--robustness-images must be at least 1, got {args.robustness_images}"
        )
    for name in names:
        require(args.data, *NEEDS[name])
    paths = {name: model_path(name, args.model_dir) for name in names}
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    env = environment(device)
    results = {}
    for name in names:
        held = held_out(name, args.data, args.quick)
        print(f"evaluating {name} on {held.description}…", file=sys.stderr, flush=True)
        results[name] = evaluate(name, paths[name], held, device)
        if args.robustness:
            print(f"robustness of {name}…", file=sys.stderr, flush=True)
            results[name]["robustness"] = robustness_of(paths[name], held, args, device)
    samples = {
        sample: sample_scores(sample, paths[model], device)
        for sample, model in SAMPLES.items()
        if model in paths
    }
    markdown = report(results, env, samples)
    payload = {
        "benchmark": "accuracy",
        "quick": args.quick,
        "environment": env,
        "results": results,
        "samples": samples,
        "anchors": ANCHORS,
        "anchor_notes": ANCHOR_NOTES,
    }
    publish("accuracy", args.quick, payload, markdown)
    if args.update_models:
        for name in names:
            update_model_file(paths[name], results[name])
            print(f"recorded held-out metrics in {paths[name].name}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return run_script("accuracy.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

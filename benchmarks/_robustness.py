"""Where a shipped model stops working: its held-out split changed the ways a user's images
differ from the training images, segmented at scale 1 and at the automatic object scale.

Each change is applied to the raw image and the result stored in the image's own type (uint8
stays uint8, so a contrast change also loses grey levels, as a real acquisition would). Scale
changes resize the truth with it (nearest neighbour), so scores are on the changed grid.
Segmentation takes the steps Segment, Batch and ``unet-loop segment`` take
(``core.inference.scale.automatic_factor``, ``predict(..., scale=factor)``,
``core.inference.postprocess.StackInstances``): once at factor 1 and once at the factor auto
picks; where auto picks 1, the scale-1 result is reused.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from _common import Sample, fmt, markdown_table, pixel_scores
from scipy import ndimage as ndi

from napari_unet_loop.core.evaluation.metrics import (
    adapted_rand_error,
    object_metrics,
    variation_of_information,
)
from napari_unet_loop.core.inference.postprocess import StackInstances
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.inference.scale import automatic_factor, resize
from napari_unet_loop.core.model.modelfile import Model

MODES = ("scale 1", "auto")


def _stored(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``values`` in the type of ``like``: rounded and clipped for integer images."""
    if like.dtype.kind in "biu":
        info = np.iinfo(like.dtype)
        return np.clip(np.round(values), info.min, info.max).astype(like.dtype)
    return values.astype(like.dtype)


def _range(image: np.ndarray) -> tuple[float, float]:
    """The range the network's percentile normalisation maps to 0..1."""
    lo, hi = np.percentile(image, (1, 99.8))
    return float(lo), float(max(hi, lo + 1e-6))


def rescale(sample: Sample, factor: float) -> Sample:
    """Image resized bilinearly (smoothed first when shrinking), truth by nearest neighbour."""
    image = _stored(resize(sample.image, factor), sample.image)
    instances = None if sample.instances is None else resize(sample.instances, factor, order=0)
    return replace(
        sample, image=image, classes=resize(sample.classes, factor, order=0), instances=instances
    )


def blur(sample: Sample, sigma: float) -> Sample:
    sigmas = [sigma, sigma] + [0.0] * (sample.image.ndim - 2)  # colour channels apart
    blurred = ndi.gaussian_filter(sample.image.astype(np.float32), sigmas)
    return replace(sample, image=_stored(blurred, sample.image))


def noise(sample: Sample, fraction: float) -> Sample:
    """Gaussian noise of ``fraction`` × the image's intensity range, seeded by its name."""
    rng = np.random.default_rng(zlib.crc32(sample.name.encode()))
    lo, hi = _range(sample.image)
    x = sample.image.astype(np.float32)
    noisy = x + rng.normal(0.0, fraction * (hi - lo), x.shape).astype(np.float32)
    return replace(sample, image=_stored(noisy, sample.image))


def contrast(sample: Sample, factor: float) -> Sample:
    """Intensities pulled towards the image mean: ``factor`` × the contrast."""
    x = sample.image.astype(np.float32)
    return replace(sample, image=_stored(x.mean() + factor * (x - x.mean()), sample.image))


def gamma(sample: Sample, power: float) -> Sample:
    """Intensities between the image's minimum and maximum raised to ``power``."""
    x = sample.image.astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    span = max(hi - lo, 1e-6)
    return replace(sample, image=_stored(lo + span * ((x - lo) / span) ** power, sample.image))


@dataclass(frozen=True)
class Change:
    name: str
    apply: Callable[[Sample], Sample]


CHANGES = (
    Change("none", lambda s: s),
    Change("scale 0.5×", lambda s: rescale(s, 0.5)),
    Change("scale 2×", lambda s: rescale(s, 2.0)),
    Change("blur σ 2 px", lambda s: blur(s, 2.0)),
    Change("noise σ 10 %", lambda s: noise(s, 0.10)),
    Change("contrast 0.25×", lambda s: contrast(s, 0.25)),
    Change("gamma 0.5", lambda s: gamma(s, 0.5)),
    Change("gamma 2", lambda s: gamma(s, 2.0)),
)


@dataclass
class Segmented:
    labels: np.ndarray  # classes
    instances: np.ndarray | None


def _segment(
    image: np.ndarray, model: Model, factor: float, rgb: bool, device, objects: bool
) -> Segmented:
    prediction = predict(image, model, device=device, rgb=rgb, scale=factor)
    if not objects:
        return Segmented(prediction.labels, None)
    number = StackInstances(model.num_classes, factor)
    return Segmented(prediction.labels, number(prediction.labels, prediction.probabilities))


def _scores(outputs: list[Segmented], samples: list[Sample], model: Model, em: bool) -> dict:
    labels = [o.labels for o in outputs]
    truths = [s.classes for s in samples]
    scores = pixel_scores(labels, truths, model.class_names)
    if em:
        pred, truth = np.stack(labels), np.stack(truths)
        vi = variation_of_information(pred, truth)
        scores["adapted_rand_error"] = adapted_rand_error(pred, truth)
        scores["variation_of_information"] = {"split": vi.split, "merge": vi.merge}
        scores["vi"] = vi.total
    if samples[0].instances is not None:
        tp = fp = fn = 0
        for out, sample in zip(outputs, samples, strict=True):
            counts = object_metrics(out.instances, sample.instances)
            tp, fp, fn = tp + counts.tp, fp + counts.fp, fn + counts.fn
        scores["objects"] = {"tp": tp, "fp": fp, "fn": fn}
        scores["ap_50"] = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    return scores


def robustness(
    model: Model, samples: list[Sample], *, rgb: bool, stack: bool, device: torch.device
) -> dict:
    """Scores of ``model`` on ``samples`` under each change, at scale 1 and auto.

    ``stack``: the samples are slices of one stack (EM), which auto measures as a whole, as
    Segment does with a layer; otherwise each image is its own layer.
    """
    objects = samples[0].instances is not None
    results = {}
    for change in CHANGES:
        start = time.perf_counter()
        changed = [change.apply(s) for s in samples]
        images = [s.image for s in changed]
        layers = [np.stack(images)] if stack else images
        factors = [
            automatic_factor(model.provenance, list(layer) if stack else [layer])
            for layer in layers
        ]
        fixed = [_segment(layer, model, 1.0, rgb, device, objects) for layer in layers]
        auto = [
            out if f == 1.0 else _segment(layer, model, f, rgb, device, objects)
            for layer, f, out in zip(layers, factors, fixed, strict=True)
        ]
        if stack:  # scored slice by slice
            fixed, auto = ([Segmented(plane, None) for plane in o[0].labels] for o in (fixed, auto))
        results[change.name] = {
            "auto_factors": [round(f, 3) for f in factors],
            "scale 1": _scores(fixed, changed, model, stack),
            "auto": _scores(auto, changed, model, stack),
            "seconds": time.perf_counter() - start,
        }
    return results


def _pair(values: dict, key: Callable[[dict], float | None], digits: int = 3) -> str:
    a, b = (key(values[m]) for m in MODES)
    return f"{fmt(a, digits)} / {fmt(b, digits)}"


def _factors(factors: list[float]) -> str:
    low, high = min(factors), max(factors)
    if low == high:
        return f"{low:.2f}"
    return f"{float(np.median(factors)):.2f} ({low:.2f}–{high:.2f})"


def robustness_table(result: dict, class_names: list[str]) -> str:
    """One Markdown table of a model's robustness: a row per change."""
    first = next(iter(result.values()))["scale 1"]
    header = ["change", "auto factor"] + [f"Dice {c}" for c in class_names]
    if "ap_50" in first:
        header.append("AP@0.5")
    if "vi" in first:
        header += ["adapted Rand error", "VI (bits)"]
    rows = []
    for change, r in result.items():
        row = [change, _factors(r["auto_factors"])]
        row += [_pair(r, lambda s, c=c: s["dice_mean"][c]) for c in class_names]
        if "ap_50" in first:
            row.append(_pair(r, lambda s: s["ap_50"]))
        if "vi" in first:
            row += [_pair(r, lambda s: s["adapted_rand_error"]), _pair(r, lambda s: s["vi"], 2)]
        rows.append(row)
    return markdown_table(header, rows)

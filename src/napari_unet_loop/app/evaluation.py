"""The Dice widget's table: Dice and IoU per class and slice, then the mean.

No Qt and no napari here, so the table is tested on arrays. Ground truth and predictions
become class maps by one rule (``core.evaluation.labelmap.class_map``); the mean leaves edited
slices out when there are unedited ones, because corrected slices equal the truth and would
hide whether the model itself got better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.errors import InputError
from ..core.evaluation.labelmap import class_map, distinct_values


def class_names(
    stored: Sequence[str] | None, model_names: Sequence[str] | None, data: np.ndarray
) -> list[str]:
    """A segmentation's class names: those Segment stored with it, else the current model's,
    else "class i" for the values it holds (two when it holds one value or many)."""
    names = stored or model_names
    if not names:
        top = int(distinct_values(data)[-1])
        names = [f"class {i}" for i in range(top + 1 if 1 <= top < 10 else 2)]
    return list(names)


def _instances(data: np.ndarray, num_classes: int) -> np.ndarray:
    """Instance ids: ids as they are when there are more values than classes, else components."""
    from scipy import ndimage as ndi

    if data.dtype.kind in "iu" and distinct_values(data).size > num_classes:
        return data
    return np.stack([ndi.label(plane > 0)[0] for plane in data.reshape(-1, *data.shape[-2:])])


@dataclass(frozen=True)
class Evaluation:
    """A metrics table (per slice, then the mean) and the mean Dice per class behind it."""

    header: list[str]
    rows: list[list[str]]
    mean_dice: dict[str, float]
    scored: list[int]
    note: str


def evaluate(
    pred: np.ndarray,
    truth: np.ndarray,
    class_names: Sequence[str],
    *,
    edited: Sequence[int] = (),
    invert: bool = False,
    instances: bool = False,
) -> Evaluation:
    """Dice and IoU per class and slice (object F1 too with ``instances``) of ``pred`` vs truth.

    The "mean" row averages the unedited slices when there are any, else all slices.
    """
    from ..core.evaluation.metrics import object_metrics, segmentation_report

    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise InputError(f"prediction {pred.shape} and ground truth {truth.shape} differ in shape")
    if pred.ndim not in (2, 3):
        raise InputError(f"expected 2D or Z×Y×X layers, got shape {pred.shape}")
    names, count = list(class_names), len(class_names)
    pred_classes, pred_note = class_map(pred, count, what="prediction")
    truth_classes, truth_note = class_map(truth, count, invert=invert)
    report = segmentation_report(pred_classes, truth_classes, count, names)
    header = ["slice", "edited", *(f"Dice {n}" for n in names), *(f"IoU {n}" for n in names)]
    f1 = []
    if instances:
        header.append("object F1")
        p, t = _instances(pred, count), _instances(truth, count)
        f1 = (
            [object_metrics(p[z], t[z]).f1 for z in range(p.shape[0])]
            if p.ndim == 3
            else [object_metrics(p, t).f1]
        )
    edited_set = {int(z) for z in edited}
    scored = [s.index for s in report.slices if s.index not in edited_set]
    scored = scored or [s.index for s in report.slices]
    rows, columns = [], []
    for s in report.slices:
        values = [s.dice[n] for n in names] + [s.iou[n] for n in names] + f1[s.index : s.index + 1]
        columns.append(values)
        edited_mark = "yes" if s.index in edited_set else ""
        rows.append([str(s.index), edited_mark, *(f"{v:.4f}" for v in values)])
    mean = np.mean([columns[z] for z in scored], axis=0)
    rows.append(["mean", f"{len(scored)} slices", *(f"{v:.4f}" for v in mean)])
    note = "; ".join(n for n in (pred_note, truth_note) if n)
    return Evaluation(
        header, rows, dict(zip(names, mean[:count].tolist(), strict=True)), scored, note
    )

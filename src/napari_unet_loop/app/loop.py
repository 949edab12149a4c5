"""The plain-Python steps of the correction loop behind the Retrain and Metrics widgets.

No Qt and no napari here, so each step is tested on arrays. Ground truth and predictions
become class maps by one rule (``core.evaluation.labelmap.class_map``); metrics leave edited
slices out of the mean when there are unedited ones, because corrected slices equal the truth
and would hide whether the model itself got better.
"""

from __future__ import annotations

import csv
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.evaluation.labelmap import class_map, distinct_values
from ..core.io.atomic import atomic_output


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


def write_csv(path: str | os.PathLike, rows: Sequence[Sequence[object]]) -> Path:
    """Write ``rows`` to a CSV file atomically (temporary file, then rename)."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def import_torch() -> None:
    """Import torch and find the devices: a second of work, better done before a click."""
    global _devices
    from ..core.model.torch_libraries import preload_torch_libraries

    preload_torch_libraries()  # the slow part of the import, without stalling the GUI thread
    from ..core.model.devices import available_devices  # imports torch

    _devices = available_devices()


def warm_up() -> None:
    """:func:`import_torch`, then build a throwaway optimizer, before the first Retrain.

    torch imports its compiler stack on the first optimizer of a process: seconds of work
    that holds the GIL in stretches long enough to stutter the viewer mid-training.
    """
    import_torch()
    import torch

    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])


_threads: dict[str, threading.Thread] = {}
_devices: list[str] | None = None


def known_devices() -> list[str] | None:
    """The devices :func:`import_torch` found (best first), or None while it still runs."""
    return _devices


def _start_once(work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` once per process in a plain thread; returns that thread.

    Not a Qt worker: the thread may outlive the widget and the viewer (napari closed right
    after a widget opened), and a Qt worker then emits signals of deleted objects, which aborts
    Python. Not a daemon either, so quitting waits for it rather than cutting torch off mid-import.
    """
    if work.__name__ not in _threads:
        thread = threading.Thread(target=work, name=f"unet-loop {work.__name__}")
        _threads[work.__name__] = thread
        thread.start()
    return _threads[work.__name__]


def start_torch_import() -> threading.Thread:
    """:func:`import_torch` in the background (Segment and Batch: no optimizer needed)."""
    return _start_once(import_torch)


def start_warm_up() -> threading.Thread:
    """:func:`warm_up` in the background (Retrain)."""
    return _start_once(warm_up)


def slices_text(slices: Sequence[int]) -> str:
    """``slice 3`` or ``slices 0, 1, 5``, for status lines and model history labels."""
    numbers = ", ".join(str(int(z)) for z in slices)
    return f"slice {numbers}" if len(slices) == 1 else f"slices {numbers}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class RetrainReport:
    """The Retrain status while a round runs, and how it ended once it has.

    The held-back corrections are scored every few iterations only; the last score stays on
    show in between. The round keeps its best-scoring weights, so the summary gives the best.
    """

    SMOOTHING = 10  # the loss of the summary is the mean of this many last iterations

    def __init__(self) -> None:
        self.iteration = self.total = 0
        self.elapsed_s = 0.0
        self.last_dice: float | None = None
        self.best_dice: float | None = None
        self.stopped_early = False
        self._losses: deque[float] = deque(maxlen=self.SMOOTHING)

    def add(self, update) -> str:
        """Record one ``core.training.train.TrainUpdate``; returns the live status line."""
        self.iteration, self.total = update.iteration, update.total
        self.elapsed_s, self.stopped_early = update.elapsed_s, update.stopped_early
        self._losses.append(update.loss)
        if update.val_dice is not None:
            self.last_dice = update.val_dice
            self.best_dice = max(update.val_dice, self.best_dice or update.val_dice)
        left = self.elapsed_s / max(self.iteration, 1) * (self.total - self.iteration)
        dice = "" if self.last_dice is None else f" · held-back Dice {self.last_dice:.3f}"
        return (
            f"Iteration {self.iteration}/{self.total} · loss {update.loss:.4f}{dice}"
            f" · ~{left:.0f} s left"
        )

    @property
    def loss(self) -> float | None:
        """Mean loss of the last iterations (a single iteration's loss is noisy)."""
        return float(np.mean(self._losses)) if self._losses else None

    def summary(self, result=None) -> str:
        """E.g. ``60 iterations, 14 s; 0.812 on held-back corrections vs 0.774 before``.

        With the round's ``core.training.rounds.RoundResult`` the guard's verdict is part of it.
        """
        if result is not None:
            text = result.message
        else:
            text = ", ".join([_count(self.iteration, "iteration"), f"{self.elapsed_s:.0f} s"])
        if self.loss is not None:
            text += f", loss {self.loss:.3f}"
        if self.stopped_early:
            text += ", stopped early: the held-back corrections no longer improved"
        return text


def retrain(model, images, labels, context, settings, scale=1.0) -> Generator:
    """Worker job: one ``core.training.rounds.correction_round`` (imports torch lazily)."""
    from ..core.training import rounds

    yield from rounds.correction_round(
        model, images, labels, context=context, settings=settings, scale=scale
    )


def predict_slices(image, model, slices: Sequence[int], *, rgb: bool, stack: bool) -> Generator:
    """Worker job: yields ``(done, total, z, labels)`` as each slice is predicted."""
    from ..core.inference.predict import predict

    for done, z in enumerate(slices, start=1):
        plane = np.asarray(image[z] if stack else image)
        yield done, len(slices), z, predict(plane, model, rgb=rgb).labels

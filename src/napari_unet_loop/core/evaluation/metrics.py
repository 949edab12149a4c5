"""Segmentation metrics: pixel scores per class, EM (ISBI 2012) scores and object scores.

Pixel scores, in the spirit of segmentation_models.pytorch: true/false positives/negatives are
counted once per class (:func:`confusion_counts`) and every score is a ratio of those counts,
so slice and stack scores share one code path::

    Dice = F1 = 2 TP / (2 TP + FP + FN)      IoU = TP / (TP + FP + FN)
    precision = TP / (TP + FP)                recall = TP / (TP + FN)
    pixel accuracy = correctly classified pixels / counted pixels

"Mean" scores average the per-slice scores (every slice weighs the same); "pooled" (stack)
scores add the counts of all slices before dividing (every pixel weighs the same).

Empty-mask rule: a ratio whose denominator is 0 is 1.0 when the class is absent from both the
prediction and the truth (TP + FP + FN == 0: perfect agreement, nothing to get wrong) and 0.0
otherwise (e.g. precision of a class never predicted but present in the truth). So a class absent
from a slice scores Dice = IoU = 1.0 there, which lifts its mean over slices;
:class:`SegmentationReport` counts those slices per class. Object scores follow the same rule.

EM scores (ISBI 2012 challenge): :func:`pixel_error`, :func:`adapted_rand_error` and
:func:`variation_of_information`.
Object scores (2018 Data Science Bowl / StarDist): :func:`match_instances`, :func:`object_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from skimage.metrics import adapted_rand_error as skimage_are
from skimage.metrics import variation_of_information as skimage_vi

from ..errors import InputError


def _ratio(num, den, absent) -> np.ndarray:
    """num / den, with the empty-mask rule where den == 0: 1.0 if ``absent`` else 0.0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.where(absent, 1.0, 0.0)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _check_same_shape(pred, truth, what: str = "prediction") -> None:
    if tuple(pred.shape) != tuple(truth.shape):
        raise InputError(
            f"{what} shape {tuple(pred.shape)} does not match truth shape {tuple(truth.shape)}"
        )


def _check_integer(array: np.ndarray, what: str) -> None:
    if array.dtype.kind not in "biu":
        raise InputError(f"{what} must hold integer labels, got dtype {array.dtype}")


def _num_slices(array) -> int:
    """1 for a 2D image, Z for a (Z, Y, X) stack; anything else is an input error."""
    if array.ndim == 2:
        return 1
    if array.ndim == 3:
        return int(array.shape[0])
    raise InputError(f"expected a 2D image or a (Z, Y, X) stack, got shape {tuple(array.shape)}")


def _slice(array, index: int) -> np.ndarray:
    return np.asarray(array if array.ndim == 2 else array[index])


# ---------------------------------------------------------------------------- pixel scores


@dataclass(frozen=True)
class ConfusionCounts:
    """Per-class pixel counts (int64 arrays of shape (num_classes,)); add them to pool slices."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @classmethod
    def zeros(cls, num_classes: int) -> ConfusionCounts:
        z = np.zeros(num_classes, dtype=np.int64)
        return cls(z, z.copy(), z.copy(), z.copy())

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        return ConfusionCounts(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    @property
    def absent(self) -> np.ndarray:
        """Per class: absent from both prediction and truth (TP + FP + FN == 0)."""
        return (self.tp + self.fp + self.fn) == 0

    def dice(self) -> np.ndarray:
        """2 TP / (2 TP + FP + FN) per class."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn, self.absent)

    def iou(self) -> np.ndarray:
        """TP / (TP + FP + FN) per class (Jaccard index)."""
        return _ratio(self.tp, self.tp + self.fp + self.fn, self.absent)

    def precision(self) -> np.ndarray:
        """TP / (TP + FP) per class."""
        return _ratio(self.tp, self.tp + self.fp, self.absent)

    def recall(self) -> np.ndarray:
        """TP / (TP + FN) per class."""
        return _ratio(self.tp, self.tp + self.fn, self.absent)

    def f1(self) -> np.ndarray:
        """Harmonic mean of precision and recall per class; for pixel counts it equals Dice."""
        return self.dice()

    def pixel_accuracy(self) -> float:
        """Correctly classified pixels / counted pixels (1.0 when no pixel is counted)."""
        total = self.tp[0] + self.fp[0] + self.fn[0] + self.tn[0]
        return float(_ratio(self.tp.sum(), total, total == 0))


def confusion_counts(
    pred: np.ndarray,
    truth: np.ndarray,
    num_classes: int,
    ignore: np.ndarray | int | None = None,
) -> ConfusionCounts:
    """Count TP/FP/FN/TN per class between two class maps of any (equal) shape.

    ``ignore`` leaves pixels out of every count: either a boolean mask (True = ignored) of the
    same shape, or a label value in ``truth`` that marks unlabelled pixels (e.g. -1).
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    _check_same_shape(pred, truth)
    _check_integer(pred, "prediction")
    _check_integer(truth, "truth")
    if num_classes < 1:
        raise InputError(f"num_classes must be at least 1, got {num_classes}")
    if ignore is None:
        keep = None
    elif np.ndim(ignore) == 0:
        keep = truth != ignore
    else:
        ignore = np.asarray(ignore, dtype=bool)
        _check_same_shape(ignore, truth, "ignore mask")
        keep = ~ignore
    p = (pred if keep is None else pred[keep]).ravel().astype(np.int64)
    t = (truth if keep is None else truth[keep]).ravel().astype(np.int64)
    for values, what in ((p, "prediction"), (t, "truth")):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = values.min() if values.min() < 0 else values.max()
            raise InputError(
                f"{what} has class value {bad}, outside 0..{num_classes - 1} "
                f"for {num_classes} classes"
            )
    # One bincount over (truth, pred) pairs gives the whole confusion matrix.
    matrix = np.bincount(t * num_classes + p, minlength=num_classes**2)
    matrix = matrix.reshape(num_classes, num_classes).astype(np.int64)
    tp = np.diag(matrix).copy()
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    tn = t.size - tp - fp - fn
    return ConfusionCounts(tp, fp, fn, tn)


def mean_foreground_dice(counts: ConfusionCounts) -> float:
    """Mean Dice of the classes after the background (class 0), with the empty-mask rule.

    What training validates with and a correction round's guard compares: counts pooled over
    every labelled pixel, then one Dice per foreground class (1.0 for a class absent from both
    prediction and labels), averaged.
    """
    dice = counts.dice()
    return float(dice[1:].mean()) if dice.size > 1 else float(dice[0])


@dataclass(frozen=True)
class SliceScores:
    """Dice and IoU per class name for one slice; ``absent`` lists classes scored 1.0 as absent."""

    index: int
    dice: dict[str, float]
    iou: dict[str, float]
    absent: tuple[str, ...]


def _by_name(names: Sequence[str], values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(names, values, strict=True)}


@dataclass(frozen=True)
class SegmentationReport:
    """Per-slice, mean-over-slices and pooled (whole-stack) scores of a class map.

    ``absent_slices[name]`` is the number of slices where the class is absent from both the
    prediction and the truth; those slices score Dice = IoU = 1.0 and count in the means.
    """

    class_names: list[str]
    slices: list[SliceScores]
    mean_dice: dict[str, float]
    mean_iou: dict[str, float]
    stack_dice: dict[str, float]
    stack_iou: dict[str, float]
    precision: dict[str, float]
    recall: dict[str, float]
    pixel_accuracy: float
    absent_slices: dict[str, int]
    counts: ConfusionCounts

    def to_dict(self) -> dict:
        """JSON-ready: plain floats, ints, strings, lists and dicts."""
        return {
            "class_names": list(self.class_names),
            "num_slices": len(self.slices),
            "pixel_accuracy": self.pixel_accuracy,
            "per_slice": [
                {
                    "slice": s.index,
                    "dice": dict(s.dice),
                    "iou": dict(s.iou),
                    "absent": list(s.absent),
                }
                for s in self.slices
            ],
            "mean_over_slices": {"dice": dict(self.mean_dice), "iou": dict(self.mean_iou)},
            "pooled": {
                "dice": dict(self.stack_dice),
                "iou": dict(self.stack_iou),
                "precision": dict(self.precision),
                "recall": dict(self.recall),
            },
            "absent_slices": dict(self.absent_slices),
            "counts": {
                key: _by_name(self.class_names, getattr(self.counts, key))
                for key in ("tp", "fp", "fn", "tn")
            },
        }

    def format_table(self) -> str:
        """A plain text table: one row per slice, then the mean and pooled rows."""
        headers = ["slice"] + [f"{n} {m}" for n in self.class_names for m in ("Dice", "IoU")]
        widths = [max(len(h), 6) for h in headers]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return "  ".join([first, *rest])

        def row(label: str, dice: dict[str, float], iou: dict[str, float]) -> str:
            return line([label] + [f"{v[n]:.4f}" for n in self.class_names for v in (dice, iou)])

        lines = [line(headers)]
        lines += [row(str(s.index), s.dice, s.iou) for s in self.slices]
        lines.append(row("mean", self.mean_dice, self.mean_iou))
        lines.append(row("pooled", self.stack_dice, self.stack_iou))
        lines.append(f"pixel accuracy {self.pixel_accuracy:.4f}")
        for name in self.class_names:
            lines.append(
                f"{name}: precision {self.precision[name]:.4f}  recall {self.recall[name]:.4f}"
            )
        absent = [f"{n} in {k}" for n, k in self.absent_slices.items() if k]
        if absent:
            lines.append(
                f"absent from prediction and truth (scored 1.0), of {len(self.slices)} "
                f"slice(s): {', '.join(absent)}"
            )
        return "\n".join(lines)


def segmentation_report(
    pred,
    truth,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    slices: Sequence[int] | None = None,
    *,
    ignore: np.ndarray | int | None = None,
) -> SegmentationReport:
    """Score a predicted class map against the truth, per slice and for the whole stack.

    ``pred`` and ``truth`` are (Y, X) images or (Z, Y, X) stacks (any stack-like: slices are
    read one at a time). ``slices`` restricts a stack to some slice indices (e.g. the annotated
    ones). ``ignore`` is a boolean mask of the same shape or a truth label value to leave out.
    """
    _check_same_shape(pred, truth)
    n = _num_slices(truth)
    names = [f"class {i}" for i in range(num_classes)] if class_names is None else list(class_names)
    if len(names) != num_classes:
        raise InputError(f"{len(names)} class names given for {num_classes} classes")
    indices = list(range(n)) if slices is None else [int(z) for z in slices]
    if not indices:
        raise InputError("no slices to evaluate")
    out_of_range = [z for z in indices if not 0 <= z < n]
    if out_of_range:
        raise InputError(f"slice {out_of_range[0]} is out of range for {n} slice(s)")
    if ignore is not None and np.ndim(ignore) != 0:
        _check_same_shape(ignore, truth, "ignore mask")

    per_slice: list[ConfusionCounts] = []
    for z in indices:
        ig = ignore if ignore is None or np.ndim(ignore) == 0 else _slice(ignore, z)
        per_slice.append(
            confusion_counts(_slice(pred, z), _slice(truth, z), num_classes, ignore=ig)
        )
    pooled = sum(per_slice, ConfusionCounts.zeros(num_classes))
    dice = np.stack([c.dice() for c in per_slice])
    iou = np.stack([c.iou() for c in per_slice])
    absent = np.stack([c.absent for c in per_slice])
    return SegmentationReport(
        class_names=names,
        slices=[
            SliceScores(
                z,
                _by_name(names, d),
                _by_name(names, i),
                tuple(name for name, a in zip(names, ab, strict=True) if a),
            )
            for z, d, i, ab in zip(indices, dice, iou, absent, strict=True)
        ],
        mean_dice=_by_name(names, dice.mean(axis=0)),
        mean_iou=_by_name(names, iou.mean(axis=0)),
        stack_dice=_by_name(names, pooled.dice()),
        stack_iou=_by_name(names, pooled.iou()),
        precision=_by_name(names, pooled.precision()),
        recall=_by_name(names, pooled.recall()),
        pixel_accuracy=pooled.pixel_accuracy(),
        absent_slices={name: int(k) for name, k in zip(names, absent.sum(axis=0), strict=True)},
        counts=pooled,
    )


# ---------------------------------------------------------------------------- EM (ISBI 2012)


def pixel_error(pred: np.ndarray, truth: np.ndarray, foreground: int = 1) -> float:
    """ISBI 2012 pixel error: the fraction of pixels whose binary label differs.

    Both maps are binarised as ``class == foreground``; the result is
    1 - pixel accuracy of that binary map (0.0 is perfect), over all pixels of any shape.
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    _check_same_shape(pred, truth)
    if truth.size == 0:
        raise InputError("cannot compute the pixel error of an empty image")
    return float(np.mean((pred == foreground) != (truth == foreground)))


def _cells(classes: np.ndarray, boundary_class: int) -> tuple[np.ndarray, int]:
    # 4-connectivity: a one-pixel diagonal membrane must still separate two cells.
    return ndi.label(classes != boundary_class)


def _cell_pairs(pred_classes, truth_classes, boundary_class: int):
    """Per slice: (truth cells, 0 on truth boundary; predicted cells, each predicted boundary
    pixel a segment of its own)."""
    _check_same_shape(pred_classes, truth_classes)
    for z in range(_num_slices(truth_classes)):
        truth_cells, _ = _cells(_slice(truth_classes, z), boundary_class)
        pred_cells, n = _cells(_slice(pred_classes, z), boundary_class)
        boundary = pred_cells == 0
        pred_cells[boundary] = n + 1 + np.arange(int(boundary.sum()))
        yield truth_cells, pred_cells


def adapted_rand_error(pred_classes, truth_classes, boundary_class: int = 1) -> float:
    """ISBI 2012 / SNEMI3D adapted Rand error of a boundary (membrane) class map; 0.0 is perfect.

    Per 2D slice, cells are the 4-connected components of the pixels whose class is not
    ``boundary_class``, in both maps. Truth boundary pixels are left out of the score; predicted
    boundary pixels count as single-pixel segments (as in the SNEMI3D reference script), so a
    cell predicted as membrane counts as split apart. The error is
    ``skimage.metrics.adapted_rand_error`` = 1 - F-score of Rand precision and recall (pairs of
    pixels in the same cell in both maps). For a stack it is the mean over slices; slices where
    it is undefined (no two truth cell pixels share a segment in either map) are left out.
    """
    scores = []
    for truth_cells, pred_cells in _cell_pairs(pred_classes, truth_classes, boundary_class):
        with np.errstate(divide="ignore", invalid="ignore"):
            error = float(skimage_are(truth_cells, pred_cells, ignore_labels=(0,))[0])
        if np.isfinite(error):
            scores.append(error)
    if not scores:
        raise InputError("the truth has no cell of two or more pixels: Rand error is undefined")
    return float(np.mean(scores))


@dataclass(frozen=True)
class VariationOfInformation:
    """Variation of information in bits, 0.0 is perfect: ``split`` = H(prediction | truth)
    (over-segmentation), ``merge`` = H(truth | prediction) (under-segmentation)."""

    split: float
    merge: float

    @property
    def total(self) -> float:
        return self.split + self.merge


def variation_of_information(
    pred_classes, truth_classes, boundary_class: int = 1
) -> VariationOfInformation:
    """Variation of information (Meilă 2007) of the cells of a boundary (membrane) class map.

    Cells are made and counted as in :func:`adapted_rand_error`: the 4-connected non-boundary
    components of each 2D slice, truth boundary pixels left out, each predicted boundary pixel
    a segment of its own (so a membrane predicted inside a cell counts as a split). For a stack
    both parts are the mean over slices; a slice without truth cell pixels is left out.
    """
    parts = []
    for truth_cells, pred_cells in _cell_pairs(pred_classes, truth_classes, boundary_class):
        if truth_cells.any():
            parts.append(skimage_vi(truth_cells, pred_cells, ignore_labels=(0,)))
    if not parts:
        raise InputError("the truth has no cell pixels: variation of information is undefined")
    split, merge = np.mean(parts, axis=0)
    return VariationOfInformation(float(split), float(merge))


# ---------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class InstanceMatch:
    """One-to-one matched objects: parallel arrays of predicted id, true id and their IoU."""

    pred_ids: np.ndarray
    truth_ids: np.ndarray
    ious: np.ndarray
    n_pred: int
    n_truth: int

    @property
    def tp(self) -> int:
        return len(self.pred_ids)

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_truth - self.tp


def _check_threshold(iou_threshold: float) -> None:
    if not 0.0 < iou_threshold <= 1.0:
        raise InputError(f"IoU threshold must be in (0, 1], got {iou_threshold}")


def match_instances(
    pred_labels: np.ndarray, truth_labels: np.ndarray, iou_threshold: float = 0.5
) -> InstanceMatch:
    """Match predicted to true objects (label 0 = background) one-to-one at IoU >= threshold.

    Overlaps are counted only for label pairs that share pixels (sparse), never for all pairs.
    At a threshold >= 0.5 an object has at most one partner above it, except in exact ties at
    0.5 between objects that have no other partner, so greedy matching by decreasing IoU is
    optimal; below 0.5 the matching maximises the number
    of matches, then their total IoU, with ``scipy.optimize.linear_sum_assignment``.
    """
    pred = np.asarray(pred_labels)
    truth = np.asarray(truth_labels)
    _check_same_shape(pred, truth)
    _check_integer(pred, "predicted labels")
    _check_integer(truth, "true labels")
    _check_threshold(iou_threshold)
    pred_ids, p_idx = np.unique(pred.ravel(), return_inverse=True)
    truth_ids, t_idx = np.unique(truth.ravel(), return_inverse=True)
    p_size = np.bincount(p_idx, minlength=len(pred_ids))
    t_size = np.bincount(t_idx, minlength=len(truth_ids))
    both = (pred.ravel() != 0) & (truth.ravel() != 0)
    pair_codes, overlap = np.unique(
        p_idx[both].astype(np.int64) * len(truth_ids) + t_idx[both], return_counts=True
    )
    pi, ti = np.divmod(pair_codes, len(truth_ids))
    iou = overlap / (p_size[pi] + t_size[ti] - overlap)
    candidate = iou >= iou_threshold
    pi, ti, iou = pi[candidate], ti[candidate], iou[candidate]

    if iou_threshold >= 0.5:
        picked = []
        used_p: set[int] = set()
        used_t: set[int] = set()
        for k in np.argsort(-iou, kind="stable"):
            a, b = int(pi[k]), int(ti[k])
            if a not in used_p and b not in used_t:
                used_p.add(a)
                used_t.add(b)
                picked.append(k)
        chosen = np.asarray(picked, dtype=np.int64)
    else:
        rows, row_of = np.unique(pi, return_inverse=True)
        cols, col_of = np.unique(ti, return_inverse=True)
        # Any match (cost -1) beats any gain in IoU (< 1/2 in total): most matches first.
        cost = np.zeros((len(rows), len(cols)))
        cost[row_of, col_of] = -1.0 - iou / (2 * max(len(rows), len(cols)))
        candidate_at = np.full(cost.shape, -1, dtype=np.int64)
        candidate_at[row_of, col_of] = np.arange(len(iou))
        chosen = candidate_at[linear_sum_assignment(cost)]
        chosen = chosen[chosen >= 0]
    return InstanceMatch(
        pred_ids=pred_ids[pi[chosen]],
        truth_ids=truth_ids[ti[chosen]],
        ious=iou[chosen],
        n_pred=int(np.count_nonzero(pred_ids)),
        n_truth=int(np.count_nonzero(truth_ids)),
    )


@dataclass(frozen=True)
class ObjectScores:
    """Object detection scores at one IoU threshold (see :func:`object_metrics`)."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    average_precision: float

    def to_dict(self) -> dict:
        return asdict(self)


def object_metrics(pred: np.ndarray, truth: np.ndarray, iou_threshold: float = 0.5) -> ObjectScores:
    """Object scores of instance label images, 2D or per 2D slice of a (Z, Y, X) stack.

    A predicted object is a true positive when matched one-to-one (:func:`match_instances`) to a
    true object with IoU >= ``iou_threshold``; unmatched predictions are FP, unmatched true
    objects FN. For stacks each slice is matched on its own and the counts are pooled.
    precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN), and
    average precision at the threshold as in the 2018 Data Science Bowl and StarDist:
    AP = TP / (TP + FP + FN). Empty cases: no objects in either -> all scores 1.0; objects in
    only one of them -> all scores 0.0.
    """
    _check_same_shape(pred, truth)
    _check_threshold(iou_threshold)
    tp = fp = fn = 0
    for z in range(_num_slices(truth)):
        match = match_instances(_slice(pred, z), _slice(truth, z), iou_threshold)
        tp, fp, fn = tp + match.tp, fp + match.fp, fn + match.fn
    absent = tp + fp + fn == 0
    return ObjectScores(
        tp=tp,
        fp=fp,
        fn=fn,
        precision=float(_ratio(tp, tp + fp, absent)),
        recall=float(_ratio(tp, tp + fn, absent)),
        f1=float(_ratio(2 * tp, 2 * tp + fp + fn, absent)),
        average_precision=float(_ratio(tp, tp + fp + fn, absent)),
    )

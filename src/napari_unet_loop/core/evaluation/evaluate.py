"""Evaluate a predicted label stack against ground truth files, as ``unet-loop evaluate`` does."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io.read import read_stack
from .labelmap import check_class_indices, parse_index_list, parse_label_map
from .metrics import (
    SegmentationReport,
    VariationOfInformation,
    adapted_rand_error,
    pixel_error,
    segmentation_report,
    variation_of_information,
)


@dataclass
class EvaluationReport:
    """Dice/IoU per class and slice, plus the EM scores of a two-class (boundary) map."""

    report: SegmentationReport
    pixel_error: float | None
    rand_error: float | None
    information: VariationOfInformation | None = None

    def to_dict(self) -> dict:
        return {
            **self.report.to_dict(),
            "pixel_error": self.pixel_error,
            "adapted_rand_error": self.rand_error,
            "variation_of_information": (
                None
                if self.information is None
                else {
                    "split": self.information.split,
                    "merge": self.information.merge,
                    "total": self.information.total,
                }
            ),
        }

    def format_table(self) -> str:
        lines = [self.report.format_table()]
        if self.pixel_error is not None:
            lines.append(f"pixel error (class 1 vs rest) {self.pixel_error:.4f}")
        if self.rand_error is not None:
            lines.append(f"adapted Rand error (class 1 as boundary) {self.rand_error:.4f}")
        if self.information is not None:
            vi = self.information
            lines.append(
                f"variation of information {vi.total:.4f} bits "
                f"(split {vi.split:.4f}, merge {vi.merge:.4f})"
            )
        return "\n".join(lines)


def _as_stack(array: np.ndarray) -> np.ndarray:
    return array[np.newaxis] if array.ndim == 2 else array


def _read_labels(path: str | os.PathLike) -> np.ndarray:
    """A label image or stack: whole numbers (floats only when every value is one)."""
    with read_stack(path) as stack:
        if stack.rgb:
            raise InputError(f"{path}: is a colour (RGB) image; evaluate needs label images")
        labels = stack.to_numpy()
    if labels.dtype.kind in "biu":
        return labels
    if labels.dtype.kind != "f":
        raise InputError(f"{path}: labels must be whole numbers, got {labels.dtype}")
    if not np.isfinite(labels).all():
        raise InputError(f"{path}: labels hold NaN or infinite values")
    whole = np.round(labels)
    if (whole != labels).any() or np.abs(whole).max(initial=0) > 2**31 - 1:
        raise InputError(f"{path}: labels must be whole numbers, got fractions")
    return whole.astype(np.int64)


def evaluate_arrays(
    prediction: np.ndarray,
    truth: np.ndarray,
    *,
    class_names: list[str] | None = None,
    slices: list[int] | None = None,
) -> EvaluationReport:
    """Score class maps (Y,X) or (Z,Y,X); for two classes, pixel error, adapted Rand error and
    variation of information (class 1 as the boundary) are added."""
    prediction, truth = _as_stack(prediction), _as_stack(truth)
    if prediction.shape != truth.shape:
        raise InputError(
            f"prediction shape {prediction.shape} does not match truth shape {truth.shape}"
        )
    num_classes = len(class_names) if class_names else int(max(prediction.max(), truth.max())) + 1
    num_classes = max(num_classes, 2)
    check_class_indices(prediction, num_classes, "prediction")
    check_class_indices(truth, num_classes, "ground truth")
    report = segmentation_report(prediction, truth, num_classes, class_names, slices)
    if num_classes != 2:
        return EvaluationReport(report, None, None)
    chosen = slices if slices is not None else list(range(len(truth)))
    pred, true = prediction[chosen], truth[chosen]
    return EvaluationReport(
        report,
        pixel_error(pred, true),
        adapted_rand_error(pred, true),
        variation_of_information(pred, true),
    )


def evaluate_files(
    prediction: str | os.PathLike,
    truth: str | os.PathLike,
    *,
    slices: str | None = None,
    truth_map: str | None = None,
    prediction_map: str | None = None,
    class_names: list[str] | None = None,
) -> EvaluationReport:
    """Read both label files, map their values to classes and score them."""
    pred = _read_labels(prediction)
    true = _read_labels(truth)
    if truth_map:
        true = parse_label_map(truth_map)(true)
    if prediction_map:
        pred = parse_label_map(prediction_map)(pred)
    if pred.ndim not in (2, 3) or true.ndim not in (2, 3):
        raise InputError("evaluate needs 2D label images or Z×Y×X label stacks")
    count = 1 if true.ndim == 2 else true.shape[0]
    chosen = parse_index_list(slices, count) if slices else None
    return evaluate_arrays(pred, true, class_names=class_names, slices=chosen)

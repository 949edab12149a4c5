"""The Segment button's job, without Qt: model, scale, prediction, instances, uncertainty.

The widget fixes a :class:`SegmentRequest` when the button is pressed and runs :func:`segment`
in a worker; the same steps run in tests on plain arrays.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..core.inference import Progress
    from ..core.modelfile import Model


@dataclass(frozen=True)
class SegmentRequest:
    """What one Segment run works on, fixed when the user presses the button."""

    image: Any  # the napari Image layer: its data, scale and name
    shape: tuple[int, ...]  # spatial shape of the image (no colour axis)
    rgb: bool
    z: int | None  # the one slice to segment, or None for all of it
    source: str | None
    ready: Model | None
    device: str
    instances: bool
    probabilities: bool
    diameter: float | None  # object diameter in pixels, None: measured on the image
    uncertainty: bool


@dataclass(frozen=True)
class SegmentResult:
    model: Model
    labels: np.ndarray  # (slices, Y, X)
    foreground: np.ndarray | None  # (slices, Y, X) float32: 1 - P(first class, "background")
    uncertainty: np.ndarray | None  # (slices, Y, X) float16, 0 sure .. 1 unsure
    scores: dict[int, float]  # mean uncertainty per slice (stack index)
    scale: float


def _scale_source(request: SegmentRequest) -> Any:
    data = request.image.data
    return [data] if len(request.shape) == 2 else data


def segment(request: SegmentRequest, data: Any) -> Generator[Progress, None, SegmentResult]:
    """Worker: load the model, predict slice by slice (yielding progress), assemble the result."""
    from ..core.inference import SlicePrediction, iter_predict
    from ..core.postprocess import StackInstances
    from ..core.scale import automatic_factor
    from ..core.uncertainty import uncertainty

    if request.ready is not None:
        model = request.ready
    else:
        from ..core.modelfile import load_model

        model = load_model(request.source)
    factor = automatic_factor(model.provenance, _scale_source(request), request.diameter)
    events = iter_predict(
        data, model, device=request.device, rgb=request.rgb, scale=factor,
        keep_probabilities=request.probabilities or request.instances or request.uncertainty,
    )
    labels, foreground, unsure, scores = [], [], [], {}
    number = StackInstances(model.num_classes, factor)
    first = request.z or 0
    for event in events:
        if not isinstance(event, SlicePrediction):
            yield event
            continue
        plane = event.labels
        if request.instances:  # per slice, so Cancel stays quick
            plane = number(plane, event.probabilities)
        labels.append(plane)
        if request.probabilities:
            foreground.append(1.0 - event.probabilities[0])
        if request.uncertainty:
            unsure.append(uncertainty(event.probabilities).astype(np.float16))
            scores[first + event.index] = float(unsure[-1].mean(dtype=np.float32))
    return SegmentResult(
        model, np.stack(labels), np.stack(foreground) if foreground else None,
        np.stack(unsure) if unsure else None, scores, factor,
    )



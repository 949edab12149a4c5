"""The Segment button's job, without Qt: model, scale, prediction, instances, uncertainty.

The widget fixes a :class:`SegmentRequest` when the button is pressed and runs :func:`segment`
in a worker. The result is filled slice by slice, so after Cancel it holds the slices already
segmented.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..core.inference.predict import Progress
    from ..core.model.modelfile import Model


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
    diameter: float | None = None  # object diameter in pixels, None: measured on the image
    uncertainty: bool = True
    precision: str = "auto"  # see core.model.precision
    contrast: str = "auto"  # the model's polarity: auto, keep or invert (core.model.normalize)


@dataclass
class SegmentResult:
    """Filled slice by slice by the worker: after Cancel it holds the slices already done."""

    model: Model | None = None
    scale: float = 1.0  # the factor slices were resized by for the network (core.inference.scale)
    inverted: bool = False  # the first slice's contrast was inverted (core.model.normalize)
    planes: list[np.ndarray] = field(default_factory=list)  # labels of each slice done
    foregrounds: list[np.ndarray] = field(default_factory=list)  # 1 - P(first class)
    unsure: list[np.ndarray] = field(default_factory=list)  # float32, 0 sure .. 1 unsure
    scores: dict[int, float] = field(default_factory=dict)  # mean uncertainty per slice
    # per slice, for ranking what to correct next (core.inference.uncertainty.slice_descriptor)
    descriptors: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:  # (slices, Y, X)
        return np.stack(self.planes)

    @property
    def foreground(self) -> np.ndarray | None:  # (slices, Y, X) float32
        return np.stack(self.foregrounds) if self.foregrounds else None

    @property
    def uncertainty(self) -> np.ndarray | None:  # (slices, Y, X) float32
        return np.stack(self.unsure) if self.unsure else None


def _scale_source(request: SegmentRequest) -> Any:
    data = request.image.data
    return [data] if len(request.shape) == 2 else data


def segment(
    request: SegmentRequest, data: Any, result: SegmentResult
) -> Generator[Progress, None, SegmentResult]:
    """Worker: load the model, predict slice by slice (yielding progress) into ``result``."""
    from ..core.inference.postprocess import StackInstances
    from ..core.inference.predict import SlicePrediction, iter_predict
    from ..core.inference.scale import automatic_factor
    from ..core.inference.uncertainty import slice_descriptor, uncertainty
    from ..core.model.channels import model_channels
    from . import models

    model = models.load_source(request.source, request.ready)
    if model.normalization.polarity != request.contrast:
        # On the model itself, so that Retrain and Save see the images as Segment did.
        model.normalization = replace(model.normalization, polarity=request.contrast)
    result.model = model
    factor = result.scale = automatic_factor(
        model.provenance, _scale_source(request), request.diameter
    )
    first_slice = np.asarray(data if len(request.shape) == 2 else data[0])
    result.inverted = model.normalization.inverts(model_channels(first_slice, model, request.rgb))
    events = iter_predict(
        data,
        model,
        device=request.device,
        rgb=request.rgb,
        scale=factor,
        precision=request.precision,
        keep_probabilities=request.probabilities or request.instances or request.uncertainty,
    )
    number = StackInstances(model.num_classes, factor)
    first = request.z or 0
    for event in events:
        if not isinstance(event, SlicePrediction):
            yield event
            continue
        plane = event.labels
        if request.instances:  # per slice, so Cancel stays quick
            plane = number(plane, event.probabilities)
        if request.probabilities:
            result.foregrounds.append(1.0 - event.probabilities[0])
        if request.uncertainty:
            result.unsure.append(uncertainty(event.probabilities))
            result.scores[first + event.index] = float(result.unsure[-1].mean())
            image = data if len(request.shape) == 2 else data[event.index]
            result.descriptors[first + event.index] = slice_descriptor(
                np.asarray(image), event.probabilities
            )
        result.planes.append(plane)
    return result

"""The work of one Segment run: what it works on, the worker, and the slices it has done.

Apart from the widget so the widget reads as a form; the result is filled slice by slice, so
after Cancel it holds the slices already segmented.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._model_picker import load_source

if TYPE_CHECKING:
    from napari.layers import Image

    from ..core.inference import Progress
    from ..core.modelfile import Model


@dataclass(frozen=True)
class Request:
    """What one Segment run works on, fixed when the user presses the button."""

    image: Image
    shape: tuple[int, ...]  # spatial shape of the image (no colour axis)
    rgb: bool
    z: int | None  # the one slice to segment, or None for all of it
    source: str | None
    ready: Model | None
    device: str
    instances: bool
    probabilities: bool


@dataclass
class Result:
    """Filled slice by slice by the worker: after Cancel it holds the slices already done."""

    model: Model | None = None
    planes: list[np.ndarray] = field(default_factory=list)  # labels of each slice done
    foregrounds: list[np.ndarray] = field(default_factory=list)  # 1 - P(first class)

    @property
    def labels(self) -> np.ndarray:  # (slices, Y, X)
        return np.stack(self.planes)

    @property
    def foreground(self) -> np.ndarray | None:  # (slices, Y, X) float32
        return np.stack(self.foregrounds) if self.foregrounds else None


def segment(request: Request, data: Any, result: Result) -> Generator[Progress, None, Result]:
    """Worker: load the model, predict slice by slice (yielding progress) into ``result``."""
    from ..core.inference import SlicePrediction, iter_predict
    from ..core.postprocess import instance_labels

    model = result.model = load_source(request.source, request.ready)
    events = iter_predict(
        data, model, device=request.device, rgb=request.rgb,
        keep_probabilities=request.probabilities or request.instances,
    )
    offset = 0
    for event in events:
        if not isinstance(event, SlicePrediction):
            yield event
            continue
        plane = event.labels
        if request.instances:
            # Per slice, so Cancel stays quick; offsets keep ids unique over the stack.
            plane = instance_labels(
                plane, foreground=tuple(range(1, model.num_classes)),
                probabilities=event.probabilities,
            )
            plane[plane > 0] += offset
            offset = max(offset, int(plane.max()))
        if request.probabilities:
            result.foregrounds.append(1.0 - event.probabilities[0])
        result.planes.append(plane)
    return result

"""The generator jobs the Retrain dock runs in workers: a round, and slices re-segmented.

Each imports torch lazily, so docking a widget never waits for it.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..core.training.rounds import RoundSettings


def default_round() -> RoundSettings:
    """The settings of the round the Retrain button runs (imports torch)."""
    from ..core.training.rounds import DEFAULT_ROUND

    return DEFAULT_ROUND


def with_iterations(settings: RoundSettings, iterations: int) -> RoundSettings:
    """``settings`` with a fixed iteration count (the Retrain widget's field, when set)."""
    from ..core.training.rounds import with_iterations as fixed

    return fixed(settings, iterations)


def max_context() -> int:
    """How many unedited slices a round takes (imports torch)."""
    from ..core.training.rounds import MAX_CONTEXT_SLICES

    return MAX_CONTEXT_SLICES


def spread(items: Sequence, count: int) -> list:
    """At most ``count`` of ``items``, evenly spread from the first to the last."""
    if len(items) <= count:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, count).round()]


def context_indices(count: int, edited: Sequence[int]) -> list[int]:
    """The unedited slices of a ``count``-slice stack a round uses for its batch-norm estimate
    and replay: spread over the stack, as many as the round takes."""
    return spread([z for z in range(count) if z not in set(edited)], max_context())


def retrain(model, images, labels, context, settings, scale=1.0, context_scale=None) -> Generator:
    """Worker job: one ``core.training.rounds.correction_round`` (imports torch lazily)."""
    from ..core.training import rounds

    yield from rounds.correction_round(
        model,
        images,
        labels,
        context=context,
        settings=settings,
        scale=scale,
        context_scale=context_scale,
    )


@dataclass(frozen=True)
class PredictedSlice:
    """Slice ``z`` predicted, the ``done``-th of ``total``; with ``unsure``, its uncertainty
    map, mean and "correct next" descriptor (``core.inference.uncertainty``), else None."""

    done: int
    total: int
    z: int
    labels: np.ndarray
    unsure: np.ndarray | None = None
    score: float | None = None
    descriptor: np.ndarray | None = None


def predict_slices(
    image,
    model,
    slices: Sequence[int],
    *,
    rgb: bool,
    stack: bool,
    scale: float = 1.0,
    unsure: bool = False,
) -> Generator[PredictedSlice, None, None]:
    """Worker job: yields a :class:`PredictedSlice` as each slice is predicted, at the object
    ``scale`` Segment chose for the layer (``core.inference.scale``)."""
    from ..core.inference.predict import predict
    from ..core.inference.uncertainty import slice_descriptor, uncertainty

    for done, z in enumerate(slices, start=1):
        plane = np.asarray(image[z] if stack else image)
        predicted = predict(plane, model, rgb=rgb, scale=scale)
        if not unsure:
            yield PredictedSlice(done, len(slices), z, predicted.labels)
            continue
        p = predicted.probabilities
        unsure_map = uncertainty(p)
        yield PredictedSlice(
            done,
            len(slices),
            z,
            predicted.labels,
            unsure_map,
            float(unsure_map.mean()),
            slice_descriptor(plane, p),
        )

"""The generator jobs the Retrain dock runs in workers: a round, and slices re-segmented.

Each imports torch lazily, so docking a widget never waits for it.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import numpy as np


def retrain(model, images, labels, context, settings, scale=1.0) -> Generator:
    """Worker job: one ``core.training.rounds.correction_round`` (imports torch lazily)."""
    from ..core.training import rounds

    yield from rounds.correction_round(
        model, images, labels, context=context, settings=settings, scale=scale
    )


def predict_slices(
    image, model, slices: Sequence[int], *, rgb: bool, stack: bool, scale: float = 1.0
) -> Generator:
    """Worker job: yields ``(done, total, z, labels)`` as each slice is predicted, at the
    object ``scale`` Segment chose for the layer (``core.inference.scale``)."""
    from ..core.inference.predict import predict

    for done, z in enumerate(slices, start=1):
        plane = np.asarray(image[z] if stack else image)
        yield done, len(slices), z, predict(plane, model, rgb=rgb, scale=scale).labels

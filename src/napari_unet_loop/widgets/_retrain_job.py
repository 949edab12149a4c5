"""What one Retrain round trains on: read from the chosen layers and checked, with messages.

No Qt here: the Retrain widget reads its fields and hands them over, so the rules for what can
be trained on live in one place apart from the buttons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..app.corrections import training_pairs
from ..app.errors import InputError
from ..app.jobs import context_indices
from ..app.models import is_shipped, load_model
from ..app.session import DEFAULT_MODEL
from ._edits import track_edits
from ._layers import META_KEY, object_scale, spatial_shape

if TYPE_CHECKING:
    from napari.layers import Image, Labels

    from ..app.jobs import RoundSettings
    from ..app.models import Model
    from ..app.session import LoopSession


@dataclass(frozen=True)
class RetrainJob:
    """The layers, slices and training data of one round (``args`` go to ``jobs.retrain``)."""

    labels: Labels
    image: Image
    slices: list[int]
    mode: str  # "dense" or "sparse"
    args: tuple


def current_model(session: LoopSession, labels: Labels) -> Model:
    """The session's model; before there is one, the shipped model that made ``labels``."""
    if session.model is None:
        name = (labels.metadata.get(META_KEY) or {}).get("model", DEFAULT_MODEL)
        if not is_shipped(name):
            raise InputError("no model yet: run Segment first, then correct and retrain")
        session.push_model(load_model(name), f"shipped {name}")
    return session.model


def context_slices(image: Image, labels: Labels, edited: list[int]) -> list[np.ndarray]:
    """Unedited slices of the image, spread over the stack, for the round's batch-norm
    estimate and replay (``core.training.rounds`` uses at most this many)."""
    if labels.ndim != 3:
        return []
    return [np.asarray(image.data[z]) for z in context_indices(labels.data.shape[0], edited)]


def make_job(
    session: LoopSession,
    labels: Labels | None,
    image: Image | None,
    *,
    sparse: bool,
    settings: RoundSettings,
) -> RetrainJob:
    """Check the choices and build the round's data; raises InputError."""
    if labels is None or image is None:
        raise InputError("choose a labels layer and its image (run Segment first)")
    if spatial_shape(image) != labels.data.shape:
        raise InputError(f"'{image.name}' and '{labels.name}' differ in shape")
    model = current_model(session, labels)
    slices = session.edited_slices(labels.name)
    images, targets = training_pairs(
        image.data,
        labels.data,
        slices,
        num_classes=model.num_classes,
        painted=track_edits(labels, session).painted(),
        sparse=sparse,
    )
    # The scale Segment used for this layer: the round trains at the model's own scale.
    scale = object_scale(labels)
    return RetrainJob(
        labels,
        image,
        slices,
        "sparse" if sparse else "dense",
        (model, images, targets, context_slices(image, labels, slices), settings, scale),
    )

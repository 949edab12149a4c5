"""What one Retrain run trains on: read from the chosen layers and checked, with messages.

No Qt here: the Retrain widget reads its fields and hands them over, so the rules for what can
be trained on live in one place apart from the buttons.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..core.errors import InputError
from ..session import DEFAULT_MODEL
from ._edits import track_edits
from ._layers import META_KEY, spatial_shape

if TYPE_CHECKING:
    from napari.layers import Image, Labels, Layer

    from ..core.modelfile import Model
    from ..core.training import TrainConfig
    from ..session import LoopSession


@dataclass(frozen=True)
class RetrainJob:
    """The layers, slices and training data of one run (``args`` go to ``loop.retrain``)."""

    labels: Labels
    image: Image
    slices: list[int]
    mode: str  # "dense" or "sparse"
    args: tuple


def current_model(session: LoopSession, labels: Labels) -> Model:
    """The session's model; before there is one, the shipped model that made ``labels``."""
    if session.model is None:
        from ..core.modelfile import load_model
        from ..core.registry import shipped_models

        name = (labels.metadata.get(META_KEY) or {}).get("model", DEFAULT_MODEL)
        if name not in shipped_models():
            raise InputError("no model yet: run Segment first, then correct and retrain")
        session.push_model(load_model(name), f"shipped {name}")
    return session.model


def make_job(
    session: LoopSession,
    labels: Labels | None,
    image: Image | None,
    truth: Layer | None,
    *,
    sparse: bool,
    validate: bool,
    invert: bool,
    config: TrainConfig,
    iterations: int,
) -> RetrainJob:
    """Check the choices and build the training (and validation) data; raises InputError."""
    from ..core.corrections import training_pairs
    from ..loop import validation_pairs

    if labels is None or image is None:
        raise InputError("choose a labels layer and its image (run Segment first)")
    if spatial_shape(image) != labels.data.shape:
        raise InputError(f"'{image.name}' and '{labels.name}' differ in shape")
    model = current_model(session, labels)
    slices = session.edited_slices(labels.name)
    images, targets = training_pairs(
        image.data, labels.data, slices, num_classes=model.num_classes,
        painted=track_edits(labels, session).painted(), sparse=sparse,
    )
    val_images = val_labels = None
    if validate:
        if truth is None or truth.data.shape != labels.data.shape:
            raise InputError("the ground truth layer must have the labels' shape")
        val_images, val_labels = validation_pairs(
            image.data, truth.data, model.num_classes, slices, invert=invert
        )
    config = replace(config, iterations=iterations)
    return RetrainJob(
        labels, image, slices, "sparse" if sparse else "dense",
        (model, images, targets, config, val_images, val_labels),
    )

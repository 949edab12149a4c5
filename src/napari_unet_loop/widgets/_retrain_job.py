"""What one Retrain round trains on: read from the chosen layers and checked, with messages.

A round trains on every correction made so far: those of the chosen segmentation and of
Segment's other segmentations in the viewer with the model's classes (a user who opens
several 2D images gets one layer each). The unedited slices and images of all of them are
the round's context (batch-norm estimate and replay), so what the user did not correct in
another layer is protected too.

No Qt here: the Retrain widget reads its fields and hands them over, so the rules for what can
be trained on live in one place apart from the buttons.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, zip_longest
from typing import TYPE_CHECKING

import numpy as np

from ..app.corrections import training_pairs
from ..app.errors import InputError
from ..app.jobs import context_indices, max_context
from ..app.models import is_shipped, load_model
from ..app.session import DEFAULT_MODEL
from ..app.status_text import slices_text
from ._edits import track_edits
from ._layers import META_KEY, object_scale, spatial_shape

if TYPE_CHECKING:
    from napari.layers import Image, Labels, Layer

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
    others: tuple[str, ...] = ()  # other segmentations whose corrections the round takes


def current_model(session: LoopSession, labels: Labels) -> Model:
    """The session's model; before there is one, the shipped model that made ``labels``."""
    if session.model is None:
        name = (labels.metadata.get(META_KEY) or {}).get("model", DEFAULT_MODEL)
        if not is_shipped(name):
            raise InputError("no model yet: run Segment first, then correct and retrain")
        session.push_model(load_model(name), f"shipped {name}")
    return session.model


def other_segmentations(
    layers: Iterable[Layer], labels: Labels, classes: list[str]
) -> list[tuple[Labels, Image]]:
    """Segment's other labels layers whose image is still open and whose classes are
    ``classes`` (the model's), each with its image."""
    from napari.layers import Image

    layers = list(layers)
    by_name = {layer.name: layer for layer in layers}
    found = []
    for layer in layers:
        meta = layer.metadata.get(META_KEY) if layer is not labels else None
        if not meta or meta.get("compare") or meta.get("classes") != list(classes):
            continue
        image = by_name.get(meta.get("image_layer"))
        if not isinstance(image, Image):
            continue
        try:
            if spatial_shape(image) == layer.data.shape:
                found.append((layer, image))
        except InputError:
            continue
    return found


def _unedited(image: Image, labels: Labels, edited: list[int]) -> list[tuple]:
    """(image layer, slice or None for a 2D image, its scale) of the unedited slices."""
    scale = object_scale(labels)
    if labels.ndim != 3:
        return [] if edited else [(image, None, scale)]
    return [(image, z, scale) for z in context_indices(labels.data.shape[0], edited)]


def context_slices(
    pairs: list[tuple[Labels, Image, list[int]]],
) -> tuple[list[np.ndarray], list[float]]:
    """Unedited slices of each (labels, image, edited) pair, taken in turn from every layer
    (the chosen one first), as many as the round uses, with the scale of each."""
    per_layer = [_unedited(image, labels, edited) for labels, image, edited in pairs]
    turns = [c for c in chain.from_iterable(zip_longest(*per_layer)) if c is not None]
    picked = turns[: max_context()]
    slices = [np.asarray(i.data if z is None else i.data[z]) for i, z, _ in picked]
    return slices, [scale for _, _, scale in picked]


def make_job(
    session: LoopSession,
    labels: Labels | None,
    image: Image | None,
    *,
    sparse: bool,
    settings: RoundSettings,
    layers: Iterable[Layer] = (),
) -> RetrainJob:
    """Check the choices and build the round's data; raises InputError. ``layers`` are the
    viewer's: Segment's other segmentations among them join the round (see the module)."""
    if labels is None or image is None:
        raise InputError("choose a labels layer and its image (run Segment first)")
    if spatial_shape(image) != labels.data.shape:
        raise InputError(f"'{image.name}' and '{labels.name}' differ in shape")
    model = current_model(session, labels)
    slices = session.edited_slices(labels.name)
    images, targets = _pairs(session, labels, image, slices, model, sparse)
    # The scale Segment used for each layer: the round trains at the model's own scale.
    scales = [object_scale(labels)] * len(images)
    pairs = [(labels, image, slices)]
    others = []
    for other, other_image in other_segmentations(layers, labels, list(model.class_names)):
        edited = session.edited_slices(other.name)
        pairs.append((other, other_image, edited))
        if not edited:
            continue
        try:
            more, more_targets = _pairs(session, other, other_image, edited, model, sparse)
        except InputError:
            continue  # e.g. instance labels, or no strokes for a sparse round: not the user's pick
        images, targets = images + more, targets + more_targets
        scales += [object_scale(other)] * len(more)
        others.append(other.name)
    context, context_scales = context_slices(pairs)
    return RetrainJob(
        labels,
        image,
        slices,
        "sparse" if sparse else "dense",
        (model, images, targets, context, settings, scales, context_scales),
        tuple(others),
    )


def others_edited(session: LoopSession, layers: Iterable[Layer], labels: Labels) -> list[str]:
    """Names of the other segmentations whose corrections a round on ``labels`` would take
    too (the classes Segment recorded for ``labels`` stand for the model's)."""
    classes = (labels.metadata.get(META_KEY) or {}).get("classes")
    if not classes:
        return []
    others = other_segmentations(layers, labels, classes)
    return [other.name for other, _ in others if session.edited_slices(other.name)]


def corrections_text(job: RetrainJob) -> str:
    """``slices 0, 1`` and, when other segmentations join, ``+ cells 2 segmentation``."""
    text = slices_text(job.slices)
    if job.others:
        text += " + " + ", ".join(job.others)
    return text


def _pairs(session, labels, image, slices, model, sparse) -> tuple[list, list]:
    return training_pairs(
        image.data,
        labels.data,
        slices,
        num_classes=model.num_classes,
        painted=track_edits(labels, session).painted(),
        sparse=sparse,
    )

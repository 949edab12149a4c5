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
from ..app.jobs import context_indices, max_context, spread
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
    """Segment's other class-label layers whose image is still open and whose classes are
    ``classes`` (the model's), each with its image. Instance labels are not classes."""
    from napari.layers import Image, Labels

    layers = list(layers)
    by_name = {layer.name: layer for layer in layers}
    found = []
    for layer in layers:
        if layer is labels or not isinstance(layer, Labels):
            continue
        meta = layer.metadata.get(META_KEY)
        if not meta or meta.get("compare") or meta.get("instances"):
            continue
        image = by_name.get(meta.get("image_layer"))
        if meta.get("classes") != list(classes) or not isinstance(image, Image):
            continue
        try:
            if spatial_shape(image) == layer.data.shape:
                found.append((layer, image))
        except InputError:
            continue
    return found


def sources(
    session: LoopSession, layers: Iterable[Layer], labels: Labels, image: Image, classes
) -> list[tuple[Labels, Image, list[int]]]:
    """(labels, image, edited slices) of the chosen segmentation, then of the others a round
    takes (see the module)."""
    others = other_segmentations(layers, labels, classes)
    return [(lab, img, session.edited_slices(lab.name)) for lab, img in [(labels, image), *others]]


def others_edited(session: LoopSession, layers: Iterable[Layer], labels: Labels) -> list[str]:
    """Names of the other segmentations whose corrections a round on ``labels`` takes too."""
    model = session.model
    classes = (labels.metadata.get(META_KEY) or {}).get("classes")
    classes = list(model.class_names) if model is not None else classes
    if not classes:
        return []
    return [
        lab.name for lab, _, edited in sources(session, layers, labels, None, classes)[1:] if edited
    ]


def context_slices(
    pairs: list[tuple[Labels, Image, list[int]]],
) -> tuple[list[np.ndarray], list[float]]:
    """The round's unedited slices and their scales: per image, the slices no segmentation
    of it has edited, an equal share from each image, taken in turn (the chosen one first)."""
    per_image: dict[int, tuple] = {}
    for labels, image, edited in pairs:
        first = per_image.setdefault(id(image), (image, labels, set()))
        first[2].update(edited)  # a slice corrected in any segmentation of it is not context
    share = -(-max_context() // max(len(per_image), 1))
    per_layer = [
        spread(_unedited(image, labels, sorted(edited)), share)
        for image, labels, edited in per_image.values()
    ]
    turns = [c for c in chain.from_iterable(zip_longest(*per_layer)) if c is not None]
    picked = turns[: max_context()]
    slices = [np.asarray(i.data if z is None else i.data[z]) for i, z, _ in picked]
    return slices, [scale for _, _, scale in picked]


def _unedited(image: Image, labels: Labels, edited: list[int]) -> list[tuple]:
    """(image layer, slice or None for a 2D image, its scale) of the unedited slices."""
    scale = object_scale(labels)
    if labels.ndim != 3:
        return [] if edited else [(image, None, scale)]
    return [(image, z, scale) for z in context_indices(labels.data.shape[0], edited)]


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
    pairs = sources(session, layers, labels, image, list(model.class_names))
    images, targets, scales, others = [], [], [], []
    taken: dict[int, set[int]] = {}  # per image: slices already trained on (first layer wins)
    for index, (lab, img, edited) in enumerate(pairs):
        fresh = [z for z in edited if z not in taken.setdefault(id(img), set())]
        if not fresh:
            continue
        try:
            more, more_targets = _pairs(session, lab, img, fresh, model, sparse)
        except InputError:
            if index == 0:
                raise  # the user's own choice: say what is wrong with it
            continue  # e.g. no strokes in another layer for a sparse round
        taken[id(img)].update(fresh)
        images, targets = images + more, targets + more_targets
        # The scale Segment used for each layer: the round trains at the model's own scale.
        scales += [object_scale(lab)] * len(more)
        if index:
            others.append(lab.name)
    if not targets:
        raise InputError("no edited slices: paint corrections on at least one slice first")
    context, context_scales = context_slices(pairs)
    return RetrainJob(
        labels,
        image,
        pairs[0][2],
        "sparse" if sparse else "dense",
        (model, images, targets, context, settings, scales, context_scales),
        tuple(others),
    )


def corrections_text(job: RetrainJob) -> str:
    """``slices 0, 1``, ``slice 0 + cells 2 segmentation``, or the other layers alone."""
    parts = [slices_text(job.slices)] if job.slices else []
    return " + ".join(parts + list(job.others))


def _pairs(
    session: LoopSession, labels: Labels, image: Image, slices: list[int], model: Model, sparse
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The training pairs of ``slices`` of one segmentation (``training_pairs``)."""
    return training_pairs(
        image.data,
        labels.data,
        slices,
        num_classes=model.num_classes,
        painted=track_edits(labels, session).painted(),
        sparse=sparse,
    )

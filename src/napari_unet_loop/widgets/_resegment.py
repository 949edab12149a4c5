"""Re-segment slices of a corrected labels layer with the session's model, in a panel's worker.

Used by Retrain for the current slice after a run and for "Re-segment all unedited slices".
A slice is written only while it is unedited: the user may paint while the worker runs.
Slices are predicted at the object scale Segment chose for the layer, and written at most once
a second: each write refreshes the layer and whatever follows it (Dice / IoU). Their uncertainty
is written too (the map layer Segment made, and what "correct next" ranks by), so both follow
the model the slices now come from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..app.jobs import PredictedSlice, predict_slices
from ..app.progress_text import Throttle
from ..app.status_text import slices_text
from ._edits import write_slices
from ._layers import META_KEY, get_layer, layer_alive, object_scale, uncertainty_name

# A slice takes about a third of a second on two CPU cores: writing each one would refresh the
# layer (and Dice / IoU) three times a second.
WRITES_PER_SECOND = 1

if TYPE_CHECKING:
    from napari.layers import Image, Labels
    from napari.viewer import Viewer

    from ..app.session import LoopSession
    from ._panel import WorkerPanel


def start_resegment(
    panel: WorkerPanel,
    viewer: Viewer,
    session: LoopSession,
    labels: Labels,
    image: Image,
    slices: list[int],
    *,
    say: Callable[[str], None],
    on_abort: Callable[[], None],
    before: str = "",
) -> None:
    """Predict ``slices`` of ``image`` into ``labels`` in ``panel``'s worker, saying progress
    (after ``before``).

    The status reads "Re-segmenting 29 slices… 3/29", then "Re-segmented 29 slices." once all
    are done (after Stop or an error the panel says what happened).
    """
    what = slices_text(slices) if len(slices) == 1 else f"{len(slices)} slices"
    pending: dict[int, PredictedSlice] = {}
    due = Throttle(per_second=WRITES_PER_SECOND)

    def flush() -> None:
        if layer_alive(viewer, labels):
            edited = set(session.edited_slices(labels.name))
            unedited = {z: item for z, item in pending.items() if z not in edited}
            if unedited:
                _note_uncertainty(viewer, labels, image, unedited)
                write_slices(labels, {z: item.labels for z, item in unedited.items()})
        pending.clear()

    def write(item: PredictedSlice) -> None:
        pending[item.z] = item
        if due.due(final=item.done >= item.total):
            flush()
            if item.total > 1:
                say(f"{before}Re-segmenting {what}… {item.done}/{item.total}")

    say(f"{before}Re-segmenting {what}…")
    panel.start(
        predict_slices,
        image.data,
        session.model,
        slices,
        rgb=image.rgb,
        stack=labels.ndim == 3,
        scale=object_scale(labels),
        description="Re-segment",
        unsure=True,
        total=lambda item: item.total,
        step=lambda item: item.done,
        on_yield=write,
        on_done=lambda _: say(f"{before}Re-segmented {what}."),
        on_abort=on_abort,
        on_finish=flush,  # the slices done before Stop or an error
        uses=(labels, image),
    )


def _note_uncertainty(
    viewer: Viewer, labels: Labels, image: Image, items: dict[int, PredictedSlice]
) -> None:
    """Record the slices' uncertainty where Segment keeps it: the labels' metadata (for
    "correct next") and the uncertainty layer, when there is one of the labels' shape."""
    metadata = labels.metadata.get(META_KEY)
    if isinstance(metadata, dict):
        for key, field in (("uncertainty", "score"), ("descriptors", "descriptor")):
            stored = dict(metadata.get(key) or {})
            stored.update({z: getattr(item, field) for z, item in items.items()})
            metadata[key] = stored
    layer = get_layer(viewer, uncertainty_name(image.name))
    if layer is None or layer.data.shape != labels.data.shape:
        return
    data = np.asarray(layer.data)
    for z, item in items.items():
        if labels.ndim == 2:
            data[...] = item.unsure
        else:
            data[z] = item.unsure
    layer.data = data

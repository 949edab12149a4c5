"""Re-segment slices of a corrected labels layer with the session's model, in a panel's worker.

Used by Retrain for the current slice after a run and for "Re-segment all unedited slices".
A slice is written only while it is unedited: the user may paint while the worker runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..app.jobs import predict_slices
from ..app.status_text import slices_text
from ._edits import write_slices
from ._layers import layer_alive

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

    def write(item: tuple) -> None:
        done, total, z, plane = item
        if layer_alive(viewer, labels) and z not in session.edited_slices(labels.name):
            write_slices(labels, {z: plane})
        if total > 1:
            say(f"{before}Re-segmenting {what}… {done}/{total}")

    say(f"{before}Re-segmenting {what}…")
    panel.start(
        predict_slices,
        image.data,
        session.model,
        slices,
        rgb=image.rgb,
        stack=labels.ndim == 3,
        description="Re-segment",
        total=lambda item: item[1],
        step=lambda item: item[0],
        on_yield=write,
        on_done=lambda _: say(f"{before}Re-segmented {what}."),
        on_abort=on_abort,
        uses=(labels, image),
    )

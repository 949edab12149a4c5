"""The one-line "what to do next" of the U-Net Loop panel, from the state of the loop.

No Qt, no napari: the panel gathers the facts from the viewer and the session.
"""

from __future__ import annotations

from dataclasses import dataclass

# The panel's sections, in the order the loop walks them.
SEGMENT, CORRECT, MEASURE, BATCH = "Segment", "Correct & Retrain", "Measure", "Batch"


@dataclass(frozen=True)
class LoopState:
    """What the viewer holds now, as far as the next step depends on it."""

    has_image: bool
    segmentation: str | None = None  # the labels layer Segment wrote, if any
    edited: int = 0  # slices of it the user corrected
    truth: str | None = None  # a layer that looks like ground truth for it, if any
    retrained: bool = False  # a Retrain round has run in this session


@dataclass(frozen=True)
class NextStep:
    section: str | None  # the section where the step is done (None: outside the panel)
    text: str


def next_step(state: LoopState) -> NextStep:
    """Open an image → Segment → paint corrections → Retrain → Measure against ground truth."""
    if not state.has_image:
        return NextStep(None, "Open an image (File ▸ Open, or File ▸ Open Sample ▸ U-Net Loop).")
    seg = state.segmentation
    if seg is None:
        return NextStep(SEGMENT, "① Segment: choose a model and press Segment.")
    if state.edited and not state.retrained:
        slices = "slice" if state.edited == 1 else "slices"
        return NextStep(
            CORRECT,
            f"② Press Retrain to learn from your {state.edited} corrected "
            f"{slices} (or correct more first).",
        )
    if state.truth is not None:
        return NextStep(
            MEASURE,
            f"③ Measure: Dice of '{seg}' against '{state.truth}'; to raise "
            "it, correct slices and Retrain again.",
        )
    if state.retrained:
        return NextStep(
            CORRECT,
            "② Correct the next slice ('Correct next' lists where) and "
            "Retrain again, or ④ Batch-segment your files.",
        )
    return NextStep(
        CORRECT,
        f"② Paint corrections into '{seg}' with the brush ('Correct next' "
        "lists where), then press Retrain.",
    )

"""Which unedited slices to correct next: the least certain first, from the per-slice mean
uncertainty Segment recorded (``core.inference.uncertainty``; no torch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..core.inference.uncertainty import Suggestion, rank_slices


def correct_next(
    scores: Mapping[int, float], edited: Iterable[int], limit: int | None = None
) -> list[Suggestion]:
    """Up to ``limit`` slices, most uncertain first, leaving out the ``edited`` ones."""
    return rank_slices(dict(scores), exclude=edited)[:limit]

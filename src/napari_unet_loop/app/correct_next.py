"""Which unedited slices to correct next, from the per-slice mean uncertainty and descriptors
Segment recorded (``core.inference.uncertainty``; no torch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ..core.inference.uncertainty import Suggestion, rank_slices


def correct_next(
    scores: Mapping[int, float],
    edited: Iterable[int],
    limit: int | None = None,
    descriptors: Mapping[int, np.ndarray] | None = None,
) -> list[Suggestion]:
    """Up to ``limit`` unedited slices to correct next: typical unsure slices not like the
    ``edited`` ones when ``descriptors`` are known, else the most uncertain first."""
    return rank_slices(dict(scores), exclude=edited, descriptors=descriptors, picks=limit)[:limit]

"""Where the model is unsure, and which slices (or tiles) to correct next.

Uncertainty is the normalised entropy of the class probabilities Segment computes anyway:
0 where one class has all the probability, 1 where every class is equally likely. Ranking by
the mean uncertainty sends the user's brush where a correction teaches the model most, as
ilastik's uncertainty view does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


def uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """Normalised entropy (float32, 0..1) of probabilities (C, *spatial) over their first axis."""
    p = np.asarray(probabilities, dtype=np.float32)
    if p.ndim < 2 or p.shape[0] < 2:
        raise InputError(f"expected probabilities of two or more classes (C, ...), got {p.shape}")
    entropy = -(p * np.log(np.clip(p, 1e-7, 1.0))).sum(axis=0)
    return np.clip(entropy / np.float32(np.log(p.shape[0])), 0.0, 1.0)


@dataclass(frozen=True)
class Suggestion:
    """A place to correct next: a slice (``box`` None) or a tile of it, with its score."""

    z: int
    score: float
    box: tuple[int, int, int, int] | None = None  # top, left, bottom, right

    def describe(self) -> str:
        where = f"slice {self.z}"
        if self.box is not None:
            top, left, bottom, right = self.box
            where += f" rows {top}-{bottom}, columns {left}-{right}"
        return f"{where} (uncertainty {self.score:.3f})"


def rank_slices(
    scores: dict[int, float] | Iterable[float], exclude: Iterable[int] = ()
) -> list[Suggestion]:
    """Slices ordered from most to least uncertain, leaving out ``exclude`` (edited ones).

    ``scores`` maps slice index to its mean uncertainty (or lists them in slice order).
    """
    if not isinstance(scores, dict):
        scores = dict(enumerate(scores))
    skip = {int(z) for z in exclude}
    ranked = sorted(
        ((int(z), float(s)) for z, s in scores.items() if int(z) not in skip),
        key=lambda item: (-item[1], item[0]),
    )
    return [Suggestion(z, s) for z, s in ranked]


def rank_tiles(
    uncertainty_map: np.ndarray, tile: int = 128, z: int = 0, limit: int = 5
) -> list[Suggestion]:
    """The ``limit`` most uncertain ``tile``-sized squares of one 2D uncertainty map."""
    u = np.asarray(uncertainty_map, dtype=np.float32)
    if u.ndim != 2:
        raise InputError(f"expected one 2D uncertainty map, got shape {u.shape}")
    if tile < 1:
        raise InputError(f"tile size must be positive, got {tile}")
    found = []
    for top in range(0, u.shape[0], tile):
        for left in range(0, u.shape[1], tile):
            part = u[top : top + tile, left : left + tile]
            box = (top, left, top + part.shape[0], left + part.shape[1])
            found.append(Suggestion(z, float(part.mean()), box))
    found.sort(key=lambda s: (-s.score, s.box))
    return found[:limit]

"""Where the model is unsure, and which slices (or tiles) to correct next.

Uncertainty is the normalised entropy of the class probabilities Segment computes anyway:
0 where one class has all the probability, 1 where every class is equally likely, as in
ilastik's uncertainty view.

Which slices to correct next: with a few corrections, the least certain slices are often the
odd ones out, and a model wrong everywhere is unsure of the atypical slices first (loop
benchmark: ranked by uncertainty alone, corrections helped the rest *less* than random picks).
Given a :func:`slice_descriptor` of each slice, :func:`rank_slices` instead picks, one after
another, the slice that stands for the most uncertainty not yet covered by a corrected or
already picked slice like it (a greedy weighted facility location, as in typicality-based
active learning): the first pick is a typical unsure slice, the next one covers another kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .scale import central_square, grey_slice, stretched

# A slice's descriptor: the shape of its power spectrum in SPECTRUM_BANDS bands (texture and
# structure size), its brightness percentiles, then what the model finds (class shares, unsure
# share). Each part weighs the same in the distance between slices.
SPECTRUM_BANDS = 12
SPECTRUM_SIDE = 256  # the spectrum of the central square: a few milliseconds a slice
_PERCENTILES = (5, 25, 50, 75, 95)
_PARTS = (SPECTRUM_BANDS, len(_PERCENTILES))  # the model's part is the rest
SURE = 0.9  # a pixel is unsure below this top-class probability
# Slices that stand for a long stack when ranking: the cost grows with their number times the
# stack's (3,000 slices all standing for each other took a second on the GUI thread).
MAX_POPULATION = 256


def uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """Normalised entropy (float32, 0..1) of probabilities (C, *spatial) over their first axis."""
    p = np.asarray(probabilities, dtype=np.float32)
    if p.ndim < 2 or p.shape[0] < 2:
        raise InputError(f"expected probabilities of two or more classes (C, ...), got {p.shape}")
    entropy = -(p * np.log(np.clip(p, 1e-7, 1.0))).sum(axis=0)
    return np.clip(entropy / np.float32(np.log(p.shape[0])), 0.0, 1.0)


def _spectrum(grey: np.ndarray) -> np.ndarray:
    """Log power of the central square in log-spaced frequency bands (1/128 to 1/2 cycles per
    pixel), relative to the strongest band: the spectrum's shape, not the image's contrast."""
    x = stretched(central_square(grey, SPECTRUM_SIDE))
    x = (x - x.mean()) * np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1]))
    power = np.abs(np.fft.rfft2(x)) ** 2
    frequency = np.hypot(np.fft.fftfreq(x.shape[0])[:, None], np.fft.rfftfreq(x.shape[1])[None])
    edges = np.geomspace(1 / 128, 0.5, SPECTRUM_BANDS + 1)
    band = np.digitize(frequency, edges) - 1
    inside = (band >= 0) & (band < SPECTRUM_BANDS)
    total = np.bincount(band[inside], power[inside], SPECTRUM_BANDS)
    count = np.bincount(band[inside], minlength=SPECTRUM_BANDS)
    log_power = np.log(total / np.maximum(count, 1) + 1e-12)
    return log_power - log_power.max()


def slice_descriptor(image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """What one slice (grey or RGB, as opened) looks like and what the model finds in it
    (``probabilities`` (C, Y, X), any scale), for :func:`rank_slices`."""
    grey = grey_slice(image)
    p = np.asarray(probabilities, dtype=np.float32)
    found = [*p.reshape(p.shape[0], -1).mean(axis=1)[1:], float((p.max(axis=0) < SURE).mean())]
    return np.concatenate(
        [_spectrum(grey), np.percentile(grey[::2, ::2], _PERCENTILES), found]
    ).astype(np.float32)


def _standardised(descriptors: np.ndarray) -> np.ndarray:
    """Each feature to zero mean and unit spread over the slices, each part of the
    descriptor scaled to weigh the same."""
    spread = descriptors.std(axis=0)
    x = (descriptors - descriptors.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    bounds = np.cumsum((0, *_PARTS, x.shape[1] - sum(_PARTS)))
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        x[:, start:stop] /= np.sqrt(max(stop - start, 1))
    return x


def _cover_order(x: np.ndarray, weights: np.ndarray, covered: np.ndarray, picks: int) -> list:
    """Up to ``picks`` rows of ``x`` (not ``covered``), each adding the most ``weights`` of
    rows similar to it and not yet similar to a covered or picked row; [] when every row is
    alike. Up to ``MAX_POPULATION`` rows spread over ``x`` stand for all of them."""
    population = np.unique(np.linspace(0, len(x) - 1, min(len(x), MAX_POPULATION)).round())
    population = population.astype(int)
    p = x[population]
    squares = (x * x).sum(axis=1)
    distance = np.maximum(squares[population, None] + squares[None] - 2 * p @ x.T, 0.0)
    spread = float(np.median(distance[:, population][np.triu_indices(len(population), 1)]))
    if not spread > 0:
        return []
    similar = np.exp(-distance / spread)  # (population, rows)
    weights = weights[population]
    cover = similar[:, covered].max(axis=1) if covered.any() else np.zeros(len(population))
    free, order = ~covered, []
    while free.any() and len(order) < picks:
        gains = weights @ np.maximum(similar - cover[:, None], 0.0)
        gains[~free] = -1.0
        best = int(np.argmax(gains))
        order.append(best)
        free[best] = False
        cover = np.maximum(cover, similar[:, best])
    return order


def _comparable(descriptors: Mapping[int, np.ndarray] | None, zs: list[int]) -> bool:
    """Whether slices ``zs`` (three or more) all have descriptors of one layout (slices
    segmented by models with different classes do not)."""
    if descriptors is None or len(zs) < 3 or any(z not in descriptors for z in zs):
        return False
    sizes = {np.size(descriptors[z]) for z in zs}
    return len(sizes) == 1 and sizes.pop() > sum(_PARTS)


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
    scores: dict[int, float] | Iterable[float],
    exclude: Iterable[int] = (),
    descriptors: Mapping[int, np.ndarray] | None = None,
    picks: int | None = None,
) -> list[Suggestion]:
    """Slices to correct next, leaving out ``exclude`` (edited ones).

    ``scores`` maps slice index to its mean uncertainty (or lists them in slice order). With a
    :func:`slice_descriptor` for every scored slice (three or more), the first ``picks`` (all
    by default) are chosen to stand for the most uncertainty not yet covered (see the module
    note; edited slices count as covered); the rest follow, most uncertain first.
    """
    if not isinstance(scores, dict):
        scores = dict(enumerate(scores))
    scores = {int(z): float(s) for z, s in scores.items()}
    skip = {int(z) for z in exclude}
    ranked = sorted(
        ((z, s) for z, s in scores.items() if z not in skip), key=lambda item: (-item[1], item[0])
    )
    zs = sorted(scores)
    if _comparable(descriptors, zs):
        x = _standardised(np.stack([np.asarray(descriptors[z], np.float64) for z in zs]))
        weights = np.array([scores[z] for z in zs]) + 1e-3  # sure slices still count a little
        covered = np.array([z in skip for z in zs])
        first = [zs[i] for i in _cover_order(x, weights, covered, picks or len(zs))]
        ranked = [(z, scores[z]) for z in first] + [item for item in ranked if item[0] not in first]
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

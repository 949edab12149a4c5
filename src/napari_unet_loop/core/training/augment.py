"""Random training patches from (image, label) pairs, with geometric and intensity augmentation.

Images are float32 and already normalised, (Y, X) or (Y, X, C); labels are integer (Y, X)
class indices with ``ignore_index`` (-1) for unannotated pixels. Corrections are often a few
brush strokes on an otherwise unannotated slice, so patch centres are drawn from annotated
pixels most of the time; otherwise most patches would teach nothing. Where a patch reaches
past the image (images smaller than the patch) the label is padded with ``ignore_index`` so
the padding is never learned.

Elastic deformation (off unless ``AugmentSettings.elastic`` is set) follows the U-Net paper:
random displacements on a coarse 3 x 3 grid, interpolated smoothly to every pixel; it is what
let the paper learn ISBI membranes from 30 slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..evaluation.labelmap import IGNORE_INDEX


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the random augmentations (zoom and gain/gamma are drawn log-uniformly).

    ``elastic``: standard deviation, in patch pixels, of the coarse-grid displacements; 0 is off.
    """

    flips: bool = True
    rotations: bool = True
    zoom: tuple[float, float] = (0.8, 1.25)
    gain: tuple[float, float] = (0.8, 1.25)
    offset: tuple[float, float] = (-0.1, 0.1)
    gamma: tuple[float, float] = (0.75, 1.33)
    elastic: float = 0.0


NO_AUGMENTATION = AugmentSettings(
    flips=False,
    rotations=False,
    zoom=(1.0, 1.0),
    gain=(1.0, 1.0),
    offset=(0.0, 0.0),
    gamma=(1.0, 1.0),
)


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    if low == high:
        return float(low)
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def crop(
    image: np.ndarray,
    label: np.ndarray,
    top: int,
    left: int,
    size: int,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` x ``size`` window at (top, left); parts outside the image are padded.

    The image is padded by mirroring (keeps plausible statistics for batch norm), the label
    with ``ignore_index`` (so the padding is never learned).
    """
    height, width = label.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, height), min(left + size, width)
    pad = ((y0 - top, top + size - y1), (x0 - left, left + size - x1))
    image_part = image[y0:y1, x0:x1]
    label_part = label[y0:y1, x0:x1]
    if any(p for pair in pad for p in pair):
        image_part = np.pad(image_part, pad + ((0, 0),) * (image.ndim - 2), mode="symmetric")
        label_part = np.pad(label_part, pad, constant_values=ignore_index)
    return image_part, label_part


def _sample_grid(source: int, size: int) -> np.ndarray:
    """Source coordinates of ``size`` output pixel centres spread over ``source`` pixels."""
    return (np.arange(size, dtype=np.float32) + 0.5) * (source / size) - 0.5


def resize_pair(image: np.ndarray, label: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize a square pair to ``size``: bilinear image, nearest-neighbour label.

    Both use the same pixel-centre grid, so image and label stay aligned.
    """
    source = label.shape[0]
    if source == size:
        return image, label
    coords = _sample_grid(source, size)
    nearest = np.clip(np.floor(coords + 0.5).astype(np.intp), 0, source - 1)
    low = np.clip(np.floor(coords).astype(np.intp), 0, source - 1)
    high = np.clip(low + 1, 0, source - 1)
    frac = np.clip(coords - low, 0.0, 1.0)
    channels = (1,) * (image.ndim - 2)
    fy = frac.reshape((size, 1) + channels)
    rows = image[low] * (1 - fy) + image[high] * fy
    fx = frac.reshape((1, size) + channels)
    out = rows[:, low] * (1 - fx) + rows[:, high] * fx
    return out.astype(np.float32), label[np.ix_(nearest, nearest)]


def flip_rotate(
    image: np.ndarray, label: np.ndarray, rng: np.random.Generator, settings: AugmentSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Random flips and 90° rotations, applied identically to image and label."""
    if settings.rotations:
        turns = int(rng.integers(4))
        image, label = np.rot90(image, turns, (0, 1)), np.rot90(label, turns, (0, 1))
    if settings.flips and rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    if settings.flips and rng.random() < 0.5:
        image, label = image[::-1], label[::-1]
    return image, label


def elastic_deform(
    image: np.ndarray, label: np.ndarray, rng: np.random.Generator, strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a square (P, P, C) image and its (P, P) label with one smooth random displacement.

    Displacements are drawn on a 3 x 3 grid with standard deviation ``strength`` pixels and
    interpolated cubically; the image is resampled bilinearly, the label by nearest neighbour,
    both mirrored at the edges so they stay aligned.
    """
    size = label.shape[0]
    coarse = rng.normal(0.0, strength, size=(2, 3, 3))
    grid = np.linspace(0.0, 2.0, size, dtype=np.float32)
    fine_y, fine_x = np.meshgrid(grid, grid, indexing="ij")
    shift = [ndi.map_coordinates(c, (fine_y, fine_x), order=3, mode="nearest") for c in coarse]
    rows, cols = np.meshgrid(
        np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32), indexing="ij"
    )
    coords = np.stack([rows + shift[0], cols + shift[1]])
    warped = np.stack(
        [
            ndi.map_coordinates(image[..., c], coords, order=1, mode="mirror")
            for c in range(image.shape[-1])
        ],
        axis=-1,
    )
    warped_label = ndi.map_coordinates(label, coords, order=0, mode="mirror")
    return warped.astype(np.float32), warped_label.astype(label.dtype)


def jitter_intensity(
    image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings
) -> np.ndarray:
    """Random gamma (on the patch's own range), gain and offset. Labels are unaffected."""
    gamma = _log_uniform(rng, settings.gamma)
    gain = _log_uniform(rng, settings.gain)
    offset = float(rng.uniform(*settings.offset))
    if gamma != 1.0:
        low, high = float(image.min()), float(image.max())
        if high > low:
            image = low + (high - low) * ((image - low) / (high - low)) ** gamma
    return (image * gain + offset).astype(np.float32)


class PatchSampler:
    """Draws augmented training patches from a fixed set of (image, label) pairs.

    Images without any annotated pixel are skipped. Each patch comes from an image chosen
    among the rest, uniformly or in proportion to ``pair_weights``; with probability
    ``annotated_centre_probability`` the patch is placed around a random annotated pixel,
    otherwise anywhere.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        patch_size: int,
        *,
        settings: AugmentSettings | None = None,
        annotated_centre_probability: float = 0.9,
        ignore_index: int = IGNORE_INDEX,
        pair_weights: Sequence[float] | None = None,
    ) -> None:
        self.patch_size = int(patch_size)
        self.settings = settings if settings is not None else AugmentSettings()
        self.annotated_centre_probability = annotated_centre_probability
        self.ignore_index = ignore_index
        self._pairs = []
        weights = []
        pair_weights = [1.0] * len(images) if pair_weights is None else pair_weights
        for image, label, weight in zip(images, labels, pair_weights, strict=True):
            annotated = np.flatnonzero(label != ignore_index)
            if annotated.size and weight > 0:
                image = image if image.ndim == 3 else image[..., None]
                self._pairs.append((image, label, annotated))
                weights.append(float(weight))
        if not self._pairs:
            raise ValueError("no image has annotated pixels")
        self._probabilities = np.asarray(weights) / np.sum(weights)

    @property
    def channels(self) -> int:
        return self._pairs[0][0].shape[-1]

    def _window_start(
        self, rng: np.random.Generator, length: int, window: int, anchor: int | None
    ) -> int:
        if window >= length:
            # Image smaller than the window: place it anywhere inside the (padded) window.
            return -int(rng.integers(window - length + 1))
        if anchor is None:
            return int(rng.integers(length - window + 1))
        margin = window // 8
        start = anchor - int(rng.integers(margin, window - margin))
        return min(max(start, 0), length - window)

    def _pick(self, rng: np.random.Generator) -> int:
        # Uniform draws keep the random stream of unweighted runs as it always was.
        if np.ptp(self._probabilities) == 0:
            return int(rng.integers(len(self._pairs)))
        return int(rng.choice(len(self._pairs), p=self._probabilities))

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One patch: image (C, P, P) float32 and label (P, P) int64."""
        image, label, annotated = self._pairs[self._pick(rng)]
        settings = self.settings
        zoom = _log_uniform(rng, settings.zoom)
        window = max(int(round(self.patch_size / zoom)), 1)
        anchor_y = anchor_x = None
        if rng.random() < self.annotated_centre_probability:
            anchor_y, anchor_x = np.unravel_index(
                annotated[int(rng.integers(annotated.size))], label.shape
            )
        top = self._window_start(rng, label.shape[0], window, anchor_y)
        left = self._window_start(rng, label.shape[1], window, anchor_x)
        img, lbl = crop(image, label, top, left, window, self.ignore_index)
        img, lbl = resize_pair(img, lbl, self.patch_size)
        if settings.elastic:
            img, lbl = elastic_deform(img, lbl, rng, settings.elastic)
        img, lbl = flip_rotate(img, lbl, rng, settings)
        img = jitter_intensity(img, rng, settings)
        return np.ascontiguousarray(img.transpose(2, 0, 1)), lbl.astype(np.int64)

    def batch(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``batch_size`` patches stacked: images (B, C, P, P) float32, labels (B, P, P) int64."""
        patches = [self.sample(rng) for _ in range(batch_size)]
        return np.stack([p[0] for p in patches]), np.stack([p[1] for p in patches])

"""Tile grids for sliding-window inference: window positions and blending weights.

Pure numpy. A slice is first padded once, the way ``UNet.forward`` pads it, to a multiple of
the network's size multiple (``2**depth``). Windows then lie inside that padded slice, start on
multiples of it and have sides that are multiples of it, so every window sees the same max-pool
grid as the whole slice and the network never pads a window again. The only difference from
whole-slice inference is then the context a window lacks beyond its inner edges, and the halo
hides it: across a halo a window's weight is 0 next to the edge and rises to 1 at ``halo``
pixels in; it is 1 up to sides on the slice border, where the window sees what the whole slice
sees. Every pixel lies in the full-weight part of at least one window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Window:
    """One tile: a rectangle of the padded slice and its separable blending weights."""

    y: int
    x: int
    weight_y: np.ndarray
    weight_x: np.ndarray

    @property
    def height(self) -> int:
        return len(self.weight_y)

    @property
    def width(self) -> int:
        return len(self.weight_x)

    @property
    def rows(self) -> slice:
        return slice(self.y, self.y + self.height)

    @property
    def cols(self) -> slice:
        return slice(self.x, self.x + self.width)

    def weights(self) -> np.ndarray:
        """The (height, width) float32 blending weights of this window."""
        return np.outer(self.weight_y, self.weight_x)


@dataclass(frozen=True)
class TileGrid:
    """The windows covering one padded slice; every slice of a stack shares the grid."""

    shape: tuple[int, int]
    padded_shape: tuple[int, int]
    window_shape: tuple[int, int]
    windows: tuple[Window, ...]

    def weight_sum(self) -> np.ndarray:
        """Sum of all windows' weights over the padded slice: divide blended sums by it."""
        total = np.zeros(self.padded_shape, dtype=np.float32)
        for window in self.windows:
            total[window.rows, window.cols] += window.weights()
        return total


def padded_length(length: int, multiple: int) -> int:
    """``length`` rounded up to a multiple of ``multiple`` (what ``pad_to_multiple`` gives)."""
    return -(-length // multiple) * multiple


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Starts of windows of size ``window`` that cover ``[0, length)`` every ``stride`` pixels.

    The last window is shifted inward to end exactly at ``length`` rather than leave it; when
    ``window >= length`` a single window starting at 0 covers everything.
    """
    if window >= length:
        return [0]
    return [*range(0, length - window, stride), length - window]


def edge_weights(halo: int) -> np.ndarray:
    """Weights of the ``halo`` pixels next to an inner window edge, edge first.

    0 over the outer three quarters, then a raised cosine up towards 1 over the inner quarter.
    A trained net's output near a window edge is far off (it takes the missing context for an
    image border), and a ramp across the whole halo lets those errors in: zero weight keeps
    them out, and the short ramp still hides the seam where neighbours meet.
    """
    weights = np.zeros(halo, dtype=np.float32)
    rise = max(1, halo // 4) if halo else 0
    steps = np.arange(rise) + 0.5
    weights[halo - rise :] = 0.5 - 0.5 * np.cos(np.pi * steps / rise)
    return weights


def blend_profile(length: int, halo: int, *, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """1D weights along a window side: 1, falling across the halo at inner edges."""
    profile = np.ones(length, dtype=np.float32)
    halo = min(halo, length // 2)
    if halo:
        if ramp_start:
            profile[:halo] = edge_weights(halo)
        if ramp_end:
            profile[length - halo :] = edge_weights(halo)[::-1]
    return profile


def _axis_windows(length: int, tile: int, halo: int, stride: int) -> list[tuple[int, np.ndarray]]:
    window = min(tile, length)
    return [
        (
            start,
            blend_profile(window, halo, ramp_start=start > 0, ramp_end=start + window < length),
        )
        for start in window_starts(length, window, stride)
    ]


def check_tiling(tile_size: int, halo: int, multiple: int) -> tuple[int, int]:
    """Validate tiling options; return the window side and stride actually used.

    The window side is ``tile_size`` rounded down to a multiple of ``multiple``; the stride is
    what is left of it after a halo on both sides, rounded down to a multiple too, so that
    window starts stay on the network's pooling grid.
    """
    if halo < 0:
        raise InputError(f"halo must be 0 or more pixels, got {halo}")
    tile = tile_size // multiple * multiple
    stride = (tile - 2 * halo) // multiple * multiple
    if stride < multiple:
        raise InputError(
            f"tile size {tile_size} is too small for halo {halo}: "
            f"use a tile size of at least {padded_length(2 * halo + multiple, multiple)}"
        )
    return tile, stride


def make_grid(shape: tuple[int, int], tile_size: int, halo: int, multiple: int) -> TileGrid:
    """The tile grid for a slice of ``shape`` (height, width), padded to ``multiple``.

    A side that fits in one tile gets one window spanning the whole padded side (small images
    are padded, never refused); longer sides get overlapping windows ``tile_size`` long.
    """
    tile, stride = check_tiling(tile_size, halo, multiple)
    if min(shape) < 1:
        raise InputError(f"cannot tile an empty slice of shape {tuple(shape)}")
    padded = (padded_length(shape[0], multiple), padded_length(shape[1], multiple))
    rows = _axis_windows(padded[0], tile, halo, stride)
    cols = _axis_windows(padded[1], tile, halo, stride)
    windows = tuple(Window(y, x, wy, wx) for y, wy in rows for x, wx in cols)
    window_shape = (min(tile, padded[0]), min(tile, padded[1]))
    return TileGrid((int(shape[0]), int(shape[1])), padded, window_shape, windows)

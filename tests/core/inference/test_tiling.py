import numpy as np
import pytest

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.inference.tiling import (
    blend_profile,
    check_tiling,
    edge_weights,
    make_grid,
    padded_length,
    window_starts,
)

SHAPES = [(1, 1), (7, 130), (64, 64), (65, 200), (200, 300), (333, 129)]


def test_window_starts_cover_the_length_and_stay_inside():
    starts = window_starts(200, 64, 32)
    assert starts[0] == 0 and starts[-1] == 200 - 64
    assert all(b - a <= 32 for a, b in zip(starts, starts[1:], strict=False))
    assert window_starts(48, 64, 32) == [0]
    assert window_starts(64, 64, 32) == [0]


def test_edge_weights_are_zero_outside_and_rise_over_the_inner_quarter():
    weights = edge_weights(128)
    assert weights.shape == (128,) and weights.dtype == np.float32
    assert np.all(weights[:96] == 0)
    assert np.all(np.diff(weights[96:]) > 0)
    assert 0 < weights[96] < weights[-1] < 1
    assert edge_weights(0).shape == (0,)


def test_blend_profile_falls_only_at_inner_edges():
    profile = blend_profile(64, 16, ramp_start=True, ramp_end=False)
    np.testing.assert_array_equal(profile[:16], edge_weights(16))
    assert np.all(profile[16:] == 1)
    both = blend_profile(64, 16, ramp_start=True, ramp_end=True)
    np.testing.assert_array_equal(both[::-1], both)
    assert np.all(blend_profile(64, 16, ramp_start=False, ramp_end=False) == 1)


def test_check_tiling_rounds_to_the_pooling_grid():
    assert check_tiling(100, 10, 16) == (96, 64)
    assert check_tiling(512, 64, 16) == (512, 384)
    with pytest.raises(InputError, match="at least 80"):
        check_tiling(64, 28, 16)
    assert check_tiling(80, 28, 16) == (80, 16)
    with pytest.raises(InputError, match="halo"):
        check_tiling(64, -1, 16)


@pytest.mark.parametrize("shape", SHAPES)
def test_windows_lie_on_the_grid_inside_the_padded_slice(shape):
    multiple = 8
    grid = make_grid(shape, 64, 12, multiple)
    padded = grid.padded_shape
    assert padded == (padded_length(shape[0], multiple), padded_length(shape[1], multiple))
    assert all(p % multiple == 0 and p >= s for p, s in zip(padded, shape, strict=True))
    for w in grid.windows:
        assert (w.height, w.width) == grid.window_shape
        assert w.y % multiple == 0 and w.x % multiple == 0
        assert w.height % multiple == 0 and w.width % multiple == 0
        assert 0 <= w.y and w.y + w.height <= padded[0]
        assert 0 <= w.x and w.x + w.width <= padded[1]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_pixel_is_in_the_full_weight_core_of_some_window(shape):
    grid = make_grid(shape, 64, 12, 8)
    best = np.zeros(grid.padded_shape, dtype=np.float32)
    for w in grid.windows:
        np.maximum(best[w.rows, w.cols], w.weights(), out=best[w.rows, w.cols])
    assert np.all(best == 1)
    assert np.all(grid.weight_sum() >= 1)
    assert any(np.any(w.weights() == 0) for w in grid.windows) == (len(grid.windows) > 1)


def test_small_slice_gets_one_window_over_the_padded_slice():
    grid = make_grid((20, 30), 64, 16, 8)
    assert grid.padded_shape == (24, 32)
    assert len(grid.windows) == 1
    assert grid.window_shape == (24, 32)
    assert np.all(grid.windows[0].weights() == 1)


def test_identity_predictor_stitches_back_the_input():
    # MONAI-style: windows of an identity "network", blended, must give the input back.
    rng = np.random.default_rng(0)
    grid = make_grid((77, 131), 32, 8, 8)
    image = rng.random(grid.padded_shape, dtype=np.float32)
    sums = np.zeros_like(image)
    for w in grid.windows:
        sums[w.rows, w.cols] += image[w.rows, w.cols] * w.weights()
    np.testing.assert_allclose(sums / grid.weight_sum(), image, rtol=1e-6)
    assert len(grid.windows) > 4


def test_empty_slice_is_refused():
    with pytest.raises(InputError):
        make_grid((0, 10), 64, 8, 8)

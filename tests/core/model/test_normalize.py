import numpy as np
import pytest

from napari_unet_loop.core.model.normalize import Normalization


def test_percentile_maps_percentiles_to_zero_and_one():
    image = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
    out = Normalization(low=1, high=99)(image)
    lo, hi = np.percentile(out, (1, 99))
    assert out.dtype == np.float32
    assert abs(lo) < 1e-5 and abs(hi - 1) < 1e-5


def test_constant_image_does_not_divide_by_zero():
    assert np.isfinite(Normalization()(np.full((8, 8), 7, np.uint8))).all()


def test_rgb_percentiles_are_joint():
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 200
    out = Normalization(low=0, high=100)(image)
    assert out[..., 0].max() == pytest.approx(1.0)
    assert out[..., 1].max() == pytest.approx(0.0)


def test_scale_and_none_modes():
    image = np.full((2, 2), 51, np.uint8)
    assert Normalization(mode="scale", scale=255)(image)[0, 0] == pytest.approx(0.2)
    assert Normalization(mode="none")(image)[0, 0] == 51


def test_round_trip_and_validation():
    n = Normalization(low=2, high=98)
    assert Normalization.from_dict(n.to_dict()) == n
    with pytest.raises(ValueError):
        Normalization(mode="zscore")
    with pytest.raises(ValueError):
        Normalization(low=50, high=10)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_zero_and_leave_the_rest_alone(bad):
    image = np.random.default_rng(1).random((16, 16)).astype(np.float32)
    spoilt = image.copy()
    spoilt[3, 4] = bad
    out, clean = Normalization(low=0, high=100)(spoilt), Normalization(low=0, high=100)(image)
    assert np.isfinite(out).all() and out[3, 4] == 0
    keep = np.ones_like(image, bool)
    keep[3, 4] = False
    # the percentiles come from the finite pixels only (here the one pixel less)
    assert np.abs(out[keep] - clean[keep]).max() < 0.05
    assert out[keep].max() == pytest.approx(1.0)


def test_all_non_finite_slice_is_zero():
    assert (Normalization()(np.full((4, 4), np.nan, np.float32)) == 0).all()


def test_a_tiny_range_is_stretched_not_flattened():
    image = (np.random.default_rng(2).random((16, 16)) * 1e-9).astype(np.float32)
    out = Normalization(low=0, high=100)(image)
    assert out.min() == pytest.approx(0.0) and out.max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "fields",
    [{"scale": 0}, {"scale": "abc"}, {"low": float("nan")}, {"high": True}, {"scale": -1.0}],
)
def test_bad_fields_are_refused(fields):
    with pytest.raises(ValueError):
        Normalization(**fields)

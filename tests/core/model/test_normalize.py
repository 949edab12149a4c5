import numpy as np
import pytest

from napari_unet_loop.core.model.normalize import (
    Normalization,
    background_of,
    training_background,
)


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


def _fluorescence(seed: int = 0) -> np.ndarray:
    """Bright round objects on a dark, noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    image = rng.normal(20, 3, (64, 64))
    for y, x in rng.integers(8, 56, (5, 2)):
        image[(yy - y) ** 2 + (xx - x) ** 2 < 25] += 150
    return image.astype(np.float32)


def test_background_of_tells_fluorescence_from_brightfield():
    dark = _fluorescence()
    assert background_of(Normalization()(dark)) == "dark"
    assert background_of(Normalization()(255 - dark)) == "bright"
    even = np.random.default_rng(1).uniform(0, 1, (64, 64))
    assert background_of(even) is None


def test_auto_polarity_inverts_only_the_other_background():
    dark, bright = _fluorescence(), 255 - _fluorescence()
    model_side = Normalization(background="dark")
    assert not model_side.inverts(dark)
    assert model_side.inverts(bright)
    flipped = model_side(bright)
    assert background_of(flipped) == "dark"
    np.testing.assert_allclose(flipped, 1 - Normalization()(bright), atol=1e-6)
    assert not Normalization().inverts(bright)  # a model that does not know its background
    assert not Normalization(background="dark", polarity="keep").inverts(bright)
    assert Normalization(polarity="invert").inverts(dark)
    colour = np.repeat(bright[..., None], 3, axis=-1)
    assert not model_side.inverts(colour)


def test_inverted_parameters_normalise_tiles_like_the_whole_slice():
    bright = 255 - _fluorescence()
    n = Normalization(background="dark")
    parameters = n.parameters(bright)
    tile = n.apply(bright[:32], parameters)
    np.testing.assert_allclose(tile, n(bright)[:32], atol=1e-6)


def test_training_background_needs_most_slices_to_agree():
    dark = [Normalization()(_fluorescence(s)) for s in range(10)]
    assert training_background(dark) == "dark"
    mixed = dark[:5] + [1 - d for d in dark[5:]]
    assert training_background(mixed) is None
    assert training_background([np.zeros((8, 8, 3))]) is None


def test_old_metadata_gets_auto_polarity_and_no_background():
    n = Normalization.from_dict({"mode": "percentile", "low": 1.0, "high": 99.8, "scale": 255.0})
    assert (n.polarity, n.background) == ("auto", None)
    assert Normalization.from_dict(n.to_dict()) == n
    with pytest.raises(ValueError):
        Normalization(polarity="sideways")
    with pytest.raises(ValueError):
        Normalization(background="grey")

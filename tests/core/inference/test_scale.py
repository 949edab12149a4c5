import numpy as np
import pytest

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.inference.postprocess import (
    DEFAULT_H,
    DEFAULT_MIN_SIZE,
    instance_options,
)
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.inference.scale import (
    automatic_factor,
    estimate_scale,
    labelled_diameter,
    model_scale,
    peak_clarity,
    record_scale,
    resize,
    resize_to,
    response_curve,
    scale_factor,
)
from napari_unet_loop.core.model.modelfile import new_model
from napari_unet_loop.core.synthetic import make_nuclei_stack


def blobs(radius: int, side: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    image = np.zeros((side, side), np.float32)
    labels = np.zeros((side, side), np.int32)
    for i, (y, x) in enumerate(rng.integers(radius, side - radius, (12, 2)), start=1):
        disc = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
        image[disc] = 1.0
        labels[disc & (labels == 0)] = i
    return image + rng.normal(0, 0.05, image.shape).astype(np.float32), labels


def test_the_estimate_follows_the_size_of_the_objects():
    small = estimate_scale(blobs(5)[0])
    large = estimate_scale(blobs(15)[0])
    assert 2.0 <= large / small <= 4.5
    assert 6 <= small <= 16


def _curve(peaks: dict[int, float]) -> np.ndarray:
    """A response curve over the 25 measured σ with the given peaks (index: height)."""
    curve = np.full(25, 0.3)
    for index, height in peaks.items():
        curve[index] = height
    return curve


def test_a_large_peak_that_would_shrink_gives_way_to_a_near_one_nearer_the_model(
    monkeypatch,
):
    from napari_unet_loop.core.inference import scale

    image = np.zeros((256, 256), np.float32)
    # objects of 4.8 px (index 3) nearly as strong as something spanning the image (152 px)
    monkeypatch.setattr(scale, "response_curve", lambda _: _curve({3: 0.97, 23: 1.0}))
    assert estimate_scale(image) == pytest.approx(152.2, abs=0.1)
    assert estimate_scale(image, 19.0) == pytest.approx(4.76, abs=0.01)
    provenance = {"scale": {"image_scale": 19.0, "image_peak": 0.4}}
    assert automatic_factor(provenance, [image]) == pytest.approx(19.0 / 4.757, rel=1e-3)
    # a weaker peak does not count
    monkeypatch.setattr(scale, "response_curve", lambda _: _curve({3: 0.9, 23: 1.0}))
    assert estimate_scale(image, 19.0) == pytest.approx(152.2, abs=0.1)
    # nor does the rule enlarge: the strongest peak below the model's measure stays
    monkeypatch.setattr(scale, "response_curve", lambda _: _curve({3: 1.0, 16: 0.97}))
    assert estimate_scale(image, 60.0) == pytest.approx(4.76, abs=0.01)


def test_labelled_diameter_is_the_median_equivalent_diameter():
    _, labels = blobs(6)
    one = (labels > 0).astype(np.int16)
    diameter = labelled_diameter(one)
    assert diameter >= 11  # discs of radius 6: 12 px across, more where two touch
    assert labelled_diameter(np.zeros((8, 8), int)) is None
    painted = np.full((20, 20), -1, np.int16)
    painted[5:10, 5:10] = 1
    assert labelled_diameter(painted) == pytest.approx(2 * np.sqrt(25 / np.pi))


def test_factors_inside_the_dead_band_are_one_and_a_given_diameter_is_taken_as_it_is():
    assert scale_factor(20.0, 22.0) == 1.0
    assert scale_factor(20.0, 60.0) == pytest.approx(1 / 3)
    # Shrinking starts sooner than enlarging: too-large objects come out in pieces.
    assert scale_factor(20.0, 36.0) == pytest.approx(20 / 36)
    assert scale_factor(20.0, 11.0) == 1.0
    assert scale_factor(20.0, 22.0, dead_band=False) == pytest.approx(20 / 22)
    assert scale_factor(None, 5.0) == 1.0
    provenance = {"scale": {"object_diameter": 15.0, "image_scale": 12.0}}
    assert automatic_factor(provenance, [], diameter=30.0) == pytest.approx(0.5)
    with pytest.raises(InputError, match="positive"):
        automatic_factor(provenance, [], diameter=-1)
    with pytest.raises(InputError, match="no object size"):
        automatic_factor({}, [], diameter=10)
    assert automatic_factor({}, [np.zeros((8, 8))]) == 1.0


def test_a_damaged_scale_record_counts_as_none():
    record = {"object_diameter": "15", "image_scale": float("nan"), "other": 3.0}
    assert model_scale({"scale": record}) == {}
    assert model_scale({"scale": {"image_scale": -2, "object_diameter": 12}}) == {
        "object_diameter": 12.0
    }
    assert model_scale({"scale": [1, 2]}) == {}
    assert automatic_factor({"scale": record}, [np.zeros((8, 8))]) == 1.0
    with pytest.raises(InputError, match="no object size"):
        automatic_factor({"scale": record}, [], diameter=10)


def test_automatic_factor_brings_large_objects_to_the_model_scale_but_not_small_images():
    provenance = {}
    record_scale(
        provenance, [blobs(5, seed=s)[0] for s in range(3)], [blobs(5, seed=s)[1] for s in range(3)]
    )
    assert set(provenance["scale"]) == {"image_scale", "image_peak", "object_diameter"}
    large = blobs(15, side=512)[0]
    assert 0.2 <= automatic_factor(provenance, [large]) <= 0.5
    assert automatic_factor(provenance, [blobs(5)[0]]) == 1.0
    small_image = blobs(15, side=140)[0]
    assert automatic_factor(provenance, [small_image]) == 1.0  # never below 128 px


def test_blobs_of_one_size_peak_clearly_and_a_flat_curve_does_not():
    assert peak_clarity(response_curve(blobs(6)[0])) >= 0.3
    assert peak_clarity(np.ones(25)) == 0.0
    assert peak_clarity(np.linspace(1.0, 0.5, 25)) == 0.0  # a maximum at the end: no size in range
    hump = 1.0 - 0.1 * np.abs(np.arange(25) - 12) / 6
    assert peak_clarity(hump) == pytest.approx(0.1)


def test_a_model_whose_training_images_had_no_clear_size_is_not_rescaled_automatically():
    large = blobs(15, side=512)[0]
    clear = {"scale": {"image_scale": 10.0, "image_peak": 0.4, "object_diameter": 10.0}}
    flat = {"scale": {"image_scale": 10.0, "image_peak": 0.1, "object_diameter": 10.0}}
    assert automatic_factor(clear, [large]) < 0.5
    assert automatic_factor(flat, [large]) == 1.0
    flattest = {"scale": {"image_scale": 10.0, "image_peak": 0.0, "object_diameter": 10.0}}
    assert automatic_factor(flattest, [large]) == 1.0
    # a diameter the user gives still rescales
    assert automatic_factor(flat, [large], diameter=30.0) == pytest.approx(1 / 3)


def test_resizing_round_trips_and_keeps_label_values():
    labels = np.kron(np.arange(16).reshape(4, 4), np.ones((8, 8), int)).astype(np.int16)
    assert np.array_equal(resize(resize(labels, 2.0, order=0), 0.5, order=0), labels)
    image = np.random.default_rng(0).random((32, 48, 3)).astype(np.float32)
    assert resize(image, 0.5).shape == (16, 24, 3)
    assert resize_to(image, (32, 48)) is image
    smooth = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (40, 1))
    back = resize_to(resize(smooth, 2.0), (40, 40))
    assert np.abs(back - smooth).max() < 0.02


def test_prediction_at_another_scale_comes_back_on_the_image_grid():
    image, _ = make_nuclei_stack((1, 64, 80), seed=0)
    model = new_model(["background", "nucleus"], depth=2, base_channels=4)
    result = predict(image[0], model, scale=0.5, device="cpu")
    assert result.labels.shape == (64, 80)
    assert result.probabilities.shape == (2, 64, 80)
    assert np.allclose(result.probabilities.sum(axis=0), 1.0, atol=1e-4)
    same = predict(image[0], model, scale=1.0, device="cpu")
    assert np.array_equal(same.labels, predict(image[0], model, device="cpu").labels)
    with pytest.raises(InputError, match="scale"):
        predict(image[0], model, scale=0.0)


def test_instance_options_scale_with_the_factor():
    assert instance_options(1.0) == {"h": DEFAULT_H, "min_size": DEFAULT_MIN_SIZE}
    third = instance_options(1 / 3)
    assert third["h"] == pytest.approx(3 * DEFAULT_H)
    assert third["min_size"] == 9 * DEFAULT_MIN_SIZE

import numpy as np
import pytest

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.inference.uncertainty import (
    SPECTRUM_BANDS,
    rank_slices,
    rank_tiles,
    slice_descriptor,
    uncertainty,
)


def test_uncertainty_is_0_when_sure_and_1_when_every_class_is_equally_likely():
    sure = np.zeros((3, 2, 2), np.float32)
    sure[1] = 1.0
    even = np.full((3, 2, 2), 1 / 3, np.float32)
    assert np.allclose(uncertainty(sure), 0.0, atol=1e-5)
    assert np.allclose(uncertainty(even), 1.0, atol=1e-5)
    half = np.stack([np.full((4,), 0.5), np.full((4,), 0.5)])
    assert np.allclose(uncertainty(half), 1.0, atol=1e-5)


def test_uncertainty_needs_two_classes():
    with pytest.raises(InputError):
        uncertainty(np.ones((1, 4, 4)))


def test_slices_are_ranked_most_uncertain_first_and_edited_ones_left_out():
    ranked = rank_slices([0.1, 0.7, 0.3, 0.7], exclude=[3])
    assert [s.z for s in ranked] == [1, 2, 0]
    assert ranked[0].describe() == "slice 1 (uncertainty 0.700)"
    assert [s.z for s in rank_slices({5: 0.2, 9: 0.4})] == [9, 5]


def _probabilities(foreground: float, shape=(64, 64)) -> np.ndarray:
    p = np.full((2, *shape), foreground, np.float32)
    p[0] = 1 - foreground
    return p


def _kinds(many: int, rng) -> dict[int, np.ndarray]:
    """``many`` slices of fine noise (0..many-1), then one of smooth blobs, unlike them."""
    fine = [rng.normal(100, 20, (64, 64)) for _ in range(many)]
    smooth = np.kron(rng.normal(100, 20, (8, 8)), np.ones((8, 8)))
    return {
        z: slice_descriptor(image, _probabilities(0.3 if z < many else 0.6))
        for z, image in enumerate([*fine, smooth])
    }


def test_a_descriptor_is_the_spectrum_shape_brightness_and_what_the_model_finds():
    rng = np.random.default_rng(0)
    grey = slice_descriptor(rng.normal(100, 20, (64, 64)), _probabilities(0.25))
    assert grey.shape == (SPECTRUM_BANDS + 5 + 1 + 1,)
    assert grey[:SPECTRUM_BANDS].max() == 0.0  # the spectrum's shape, not its level
    assert grey[-2] == pytest.approx(0.25) and grey[-1] == 1.0  # foreground share, all unsure
    rgb = slice_descriptor(rng.normal(100, 20, (64, 64, 3)), _probabilities(0.95))
    assert rgb.shape == grey.shape and rgb[-1] == 0.0
    with pytest.raises(InputError):
        slice_descriptor(np.zeros((2, 4, 4, 4)), _probabilities(0.5))


def test_the_first_pick_stands_for_many_unsure_slices_not_the_one_odd_slice():
    descriptors = _kinds(6, np.random.default_rng(1))
    scores = {z: (0.5 if z < 6 else 0.9) for z in descriptors}
    assert rank_slices(scores)[0].z == 6  # by uncertainty alone: the odd one out
    ranked = [s.z for s in rank_slices(scores, descriptors=descriptors)]
    assert ranked[0] < 6 and ranked[1] == 6  # a typical slice, then the other kind
    assert sorted(ranked) == list(range(7))
    assert (
        rank_slices(scores, descriptors=descriptors)[0].describe().endswith("(uncertainty 0.500)")
    )


def test_a_long_stack_is_ranked_the_same_way(monkeypatch):
    from napari_unet_loop.core.inference import uncertainty as module

    monkeypatch.setattr(module, "MAX_POPULATION", 5)  # a few slices stand for the stack
    descriptors = _kinds(12, np.random.default_rng(4))
    scores = {z: (0.5 if z < 12 else 0.9) for z in descriptors}
    ranked = [s.z for s in rank_slices(scores, descriptors=descriptors, picks=2)]
    assert ranked[0] < 12 and ranked[1] == 12 and sorted(ranked) == list(range(13))


def test_edited_slices_cover_the_slices_like_them():
    descriptors = _kinds(6, np.random.default_rng(2))
    scores = {z: (0.5 if z < 6 else 0.9) for z in descriptors}
    ranked = [s.z for s in rank_slices(scores, exclude=[2], descriptors=descriptors, picks=1)]
    assert ranked[0] == 6 and 2 not in ranked and len(ranked) == 6


def test_without_a_descriptor_for_every_slice_the_most_uncertain_come_first():
    descriptors = _kinds(6, np.random.default_rng(3))
    scores = {z: (0.5 if z < 6 else 0.9) for z in descriptors}
    del descriptors[3]
    assert rank_slices(scores, descriptors=descriptors)[0].z == 6
    alike = {z: descriptors[0] for z in scores}  # nothing to tell them apart
    assert rank_slices(scores, descriptors=alike)[0].z == 6
    mixed = _kinds(6, np.random.default_rng(3))  # one slice from a model of three classes
    mixed[0] = np.append(mixed[0], 0.1)
    assert rank_slices(scores, descriptors=mixed)[0].z == 6


def test_tiles_are_ranked_within_a_slice():
    u = np.zeros((8, 8), np.float32)
    u[4:, :4] = 1.0
    best = rank_tiles(u, tile=4, z=2, limit=2)
    assert best[0].box == (4, 0, 8, 4) and best[0].z == 2 and best[0].score == 1.0
    assert len(best) == 2
    assert "rows 4-8, columns 0-4" in best[0].describe()

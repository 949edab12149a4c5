import numpy as np
import pytest

from napari_unet_loop.app.jobs import predict_slices
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.inference.uncertainty import slice_descriptor, uncertainty
from napari_unet_loop.core.model.modelfile import new_model


def test_re_segmented_slices_are_predicted_at_the_layers_object_scale():
    rng = np.random.default_rng(0)
    stack = rng.normal(100, 20, (3, 64, 64)).astype(np.float32)
    model = new_model(["background", "nucleus"], depth=2, base_channels=4)
    items = list(predict_slices(stack, model, [0, 2], rgb=False, stack=True, scale=0.5))
    assert [(i.done, i.total, i.z) for i in items] == [(1, 2, 0), (2, 2, 2)]
    for item in items:
        assert item.labels.shape == (64, 64) and item.unsure is None
        expected = predict(stack[item.z], model, rgb=False, scale=0.5).labels
        np.testing.assert_array_equal(item.labels, expected)
    at_one = predict(stack[2], model, rgb=False).probabilities
    at_half = predict(stack[2], model, rgb=False, scale=0.5).probabilities
    assert not np.allclose(at_one, at_half)  # so the test above can tell the scales apart


def test_re_segmented_slices_can_bring_their_uncertainty_for_correct_next():
    rng = np.random.default_rng(1)
    stack = rng.normal(100, 20, (2, 64, 64)).astype(np.float32)
    model = new_model(["background", "nucleus"], depth=2, base_channels=4)
    (item,) = predict_slices(stack, model, [1], rgb=False, stack=True, unsure=True)
    probabilities = predict(stack[1], model, rgb=False).probabilities
    np.testing.assert_allclose(item.unsure, uncertainty(probabilities), atol=1e-6)
    assert item.score == pytest.approx(float(item.unsure.mean()))
    np.testing.assert_allclose(item.descriptor, slice_descriptor(stack[1], probabilities))


def test_a_round_gets_unedited_context_slices_spread_over_the_stack():
    from napari_unet_loop.app.jobs import context_indices
    from napari_unet_loop.core.training.rounds import MAX_CONTEXT_SLICES

    assert context_indices(4, [1]) == [0, 2, 3]
    picked = context_indices(30, [0, 5])
    assert len(picked) == MAX_CONTEXT_SLICES
    assert picked[0] == 1 and picked[-1] == 29 and not {0, 5} & set(picked)


def test_the_default_round_and_a_fixed_iteration_count():
    from napari_unet_loop.app.jobs import default_round, with_iterations
    from napari_unet_loop.core.training.rounds import DEFAULT_ROUND

    assert default_round() is DEFAULT_ROUND
    assert with_iterations(default_round(), 7).iterations == 7

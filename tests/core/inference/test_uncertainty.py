import numpy as np
import pytest

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.inference.uncertainty import rank_slices, rank_tiles, uncertainty


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


def test_tiles_are_ranked_within_a_slice():
    u = np.zeros((8, 8), np.float32)
    u[4:, :4] = 1.0
    best = rank_tiles(u, tile=4, z=2, limit=2)
    assert best[0].box == (4, 0, 8, 4) and best[0].z == 2 and best[0].score == 1.0
    assert len(best) == 2
    assert "rows 4-8, columns 0-4" in best[0].describe()

import numpy as np

from napari_unet_loop.app.correct_next import correct_next
from napari_unet_loop.core.inference.uncertainty import slice_descriptor


def test_the_least_certain_unedited_slices_come_first():
    scores = {0: 0.1, 1: 0.5, 2: 0.3, 3: 0.9}
    assert [s.z for s in correct_next(scores, edited=[3])] == [1, 2, 0]
    assert [s.z for s in correct_next(scores, edited=[], limit=2)] == [3, 1]


def test_with_descriptors_a_typical_unsure_slice_comes_before_the_odd_one():
    rng = np.random.default_rng(0)
    p = np.stack([np.full((64, 64), 0.6, np.float32), np.full((64, 64), 0.4, np.float32)])
    descriptors = {z: slice_descriptor(rng.normal(100, 20, (64, 64)), p) for z in range(5)}
    descriptors[5] = slice_descriptor(np.kron(rng.normal(100, 20, (8, 8)), np.ones((8, 8))), p)
    scores = {z: 0.5 for z in range(5)} | {5: 0.9}
    assert correct_next(scores, edited=[], limit=1)[0].z == 5
    picks = correct_next(scores, edited=[], limit=2, descriptors=descriptors)
    assert picks[0].z < 5 and picks[1].z == 5

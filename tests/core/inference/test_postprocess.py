import numpy as np
import pytest

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.inference.postprocess import (
    instance_labels,
    probabilities_to_classes,
    remove_small_objects,
)


def _touching_discs(distance: float, radius: int = 10) -> np.ndarray:
    """Two overlapping discs of class 1 on a 64x64 background, centres ``distance`` apart."""
    yy, xx = np.mgrid[:64, :64]
    left = (yy - 32) ** 2 + (xx - 32 + distance / 2) ** 2 <= radius**2
    right = (yy - 32) ** 2 + (xx - 32 - distance / 2) ** 2 <= radius**2
    return (left | right).astype(np.uint8)


def test_probabilities_to_classes_is_argmax_uint8():
    rng = np.random.default_rng(0)
    probs = rng.random((3, 2, 5, 6)).astype(np.float32)
    classes = probabilities_to_classes(probs)
    assert classes.dtype == np.uint8 and classes.shape == (2, 5, 6)
    np.testing.assert_array_equal(classes, probs.argmax(axis=0))
    with pytest.raises(InputError, match=r"\(C, Y, X\)"):
        probabilities_to_classes(np.zeros((5, 6)))


def test_watershed_splits_touching_discs_components_merge_them():
    classes = _touching_discs(16)
    split = instance_labels(classes, method="watershed")
    merged = instance_labels(classes, method="components")
    assert split.dtype == np.int32 and merged.dtype == np.int32
    assert split.max() == 2 and set(np.unique(split)) == {0, 1, 2}
    assert merged.max() == 1
    np.testing.assert_array_equal(split > 0, classes == 1)
    # Each half goes to its own object: the two disc centres get different labels.
    assert split[32, 24] != split[32, 40]
    sizes = np.bincount(split.ravel())[1:]
    assert abs(int(sizes[0]) - int(sizes[1])) < 0.15 * sizes.sum()


def test_watershed_keeps_a_single_blob_whole():
    classes = _touching_discs(4)  # nearly one disc: no neck to split at
    assert instance_labels(classes).max() == 1


def test_foreground_probabilities_help_split_at_a_low_probability_neck():
    classes = _touching_discs(8)
    probs = np.zeros((2, 64, 64), dtype=np.float32)
    probs[1] = classes
    probs[1, :, 31:34] *= 0.3  # the network is unsure where the discs touch
    probs[0] = 1 - probs[1]
    assert instance_labels(classes).max() == 1
    assert instance_labels(classes, probabilities=probs).max() == 2
    with pytest.raises(InputError, match="probabilities shape"):
        instance_labels(classes, probabilities=probs[:, :32])


def test_instance_labels_foreground_classes_and_min_size():
    classes = np.zeros((32, 32), dtype=np.uint8)
    classes[2:10, 2:10] = 2  # 64 px, class 2
    classes[20:30, 20:30] = 1  # 100 px, class 1
    classes[15, 15] = 2  # a speck
    only_two = instance_labels(classes, foreground=(2,), method="components", min_size=4)
    assert only_two.max() == 1 and np.count_nonzero(only_two) == 64
    both = instance_labels(classes, foreground=(1, 2), method="components", min_size=1)
    assert both.max() == 3
    # Watershed too: the speck is too thin to hold a seed, but it is still an object.
    assert instance_labels(classes, foreground=(1, 2), min_size=1).max() == 3
    both_no_speck = instance_labels(classes, foreground=(1, 2), min_size=16)
    assert both_no_speck.max() == 2 and both_no_speck[15, 15] == 0


def test_instance_labels_stack_ids_unique_across_slices_with_progress():
    stack = np.stack([_touching_discs(16), np.zeros((64, 64), np.uint8), _touching_discs(16)])
    calls = []
    labels = instance_labels(stack, progress=lambda done, total: calls.append((done, total)))
    assert labels.shape == stack.shape
    assert set(np.unique(labels[0])) == {0, 1, 2}
    assert labels[1].max() == 0
    assert set(np.unique(labels[2])) == {0, 3, 4}
    assert calls == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(InputError, match="method"):
        instance_labels(stack, method="magic")


def test_remove_small_objects_instances_relabels_consecutively():
    labels = np.zeros((10, 10), dtype=np.uint16)
    labels[0:3, 0:3] = 5  # 9 px
    labels[5, 5] = 7  # 1 px
    labels[6:10, 6:10] = 9  # 16 px
    out = remove_small_objects(labels, 4)
    assert out.dtype == np.int32
    assert set(np.unique(out)) == {0, 1, 2}
    assert (out[0:3, 0:3] == 1).all() and (out[6:10, 6:10] == 2).all()
    assert out[5, 5] == 0


def test_remove_small_objects_class_map_zeroes_small_foreground_regions():
    classes = np.zeros((2, 10, 10), dtype=np.uint8)
    classes[0, 0:4, 0:4] = 1  # 16 px
    classes[0, 8, 8] = 1  # 1 px
    classes[0, 6, 0:2] = 2  # 2 px
    classes[1, 8, 8] = 1  # the same speck in another slice: sizes are per slice
    classes[1, 2:5, 2:5] = 0
    big = classes.copy()
    big[0, 1:3, 1:3] = 0  # a small background hole inside the big region stays
    out = remove_small_objects(big, 3, kind="classes")
    assert out.dtype == np.uint8
    assert out[0, 8, 8] == 0 and out[1, 8, 8] == 0 and (out[0, 6, 0:2] == 0).all()
    assert np.count_nonzero(out) == 12
    np.testing.assert_array_equal(out[0, 1:3, 1:3], 0)
    with pytest.raises(InputError, match="kind"):
        remove_small_objects(classes, 3, kind="blobs")
    with pytest.raises(InputError, match="negative"):
        remove_small_objects(np.array([[-1, 0]]), 3)

import numpy as np
import pytest
from scipy import ndimage

from napari_unet_loop.core.synthetic import make_membrane_stack, make_nuclei_stack


@pytest.fixture(scope="module")
def membranes():
    return make_membrane_stack((4, 128, 128), seed=0)


@pytest.fixture(scope="module")
def nuclei():
    return make_nuclei_stack((3, 128, 128), seed=0)


def test_membrane_stack_types_and_classes(membranes):
    image, labels = membranes
    assert image.shape == labels.shape == (4, 128, 128)
    assert image.dtype == np.uint8 and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1}
    assert 0.1 < labels.mean() < 0.35  # ISBI 2012: 0.22


def test_membranes_are_dark_and_as_wide_as_isbi_labels(membranes):
    image, labels = membranes
    membrane = labels == 1
    assert image[membrane].mean() < image[~membrane].mean() - 50
    # Lines about 5 px wide: a 7x7 erosion removes nearly all of them...
    assert ndimage.binary_erosion(membrane, np.ones((1, 7, 7))).sum() < 0.05 * membrane.sum()
    # ... a 3x3 one keeps most of them.
    assert ndimage.binary_erosion(membrane, np.ones((1, 3, 3))).sum() > 0.4 * membrane.sum()


def test_membrane_darkness_fades_over_a_few_pixels(membranes):
    image, labels = membranes
    # ssTEM membranes are darkest on their centre line, not flat dark bands.
    inner = ndimage.binary_erosion(labels == 1, np.ones((1, 3, 3)))
    rim = (labels == 1) & ~inner
    assert image[inner].mean() < image[rim].mean() - 10


def test_membrane_cells_change_slowly_between_slices(membranes):
    _, labels = membranes
    near = ndimage.binary_dilation(labels[0] == 1, iterations=3)
    assert (near & (labels[1] == 1)).sum() > 0.6 * (labels[1] == 1).sum()
    far_stack = make_membrane_stack((1, 128, 128), seed=5)[1][0]
    assert (near & (far_stack == 1)).sum() < (near & (labels[1] == 1)).sum()


def test_generators_are_seeded():
    a = make_membrane_stack((2, 64, 64), seed=3)
    b = make_membrane_stack((2, 64, 64), seed=3)
    c = make_membrane_stack((2, 64, 64), seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    n1, n2 = make_nuclei_stack((1, 64, 64), seed=3), make_nuclei_stack((1, 64, 64), seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(n1, n2, strict=True))


def test_nuclei_stack_types_and_contrast(nuclei):
    image, labels = nuclei
    assert image.shape == labels.shape == (3, 128, 128)
    assert image.dtype == np.uint8 and labels.dtype == np.uint16
    assert len(np.unique(labels[1])) - 1 >= 8
    assert image[labels == 0].mean() < 30
    assert image[labels > 0].mean() > 70


def test_nuclei_vary_in_brightness_and_some_touch(nuclei):
    image, labels = nuclei
    means = ndimage.mean(image[1], labels[1], index=np.unique(labels[1])[1:])
    assert means.max() - means.min() > 40
    a, b = labels[:, 1:, :], labels[:, :-1, :]
    touching = (a != b) & (a > 0) & (b > 0)
    assert touching.any()


def test_nucleus_is_one_connected_blob_per_slice(nuclei):
    _, labels = nuclei
    for value in np.unique(labels[1])[1:]:
        _, count = ndimage.label(labels[1] == value)
        assert count == 1


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError):
        make_membrane_stack((64, 64))
    with pytest.raises(ValueError):
        make_nuclei_stack((0, 64, 64))

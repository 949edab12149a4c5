import numpy as np
import pytest
from scipy import ndimage

from napari_unet_loop.core.evaluation.labelmap import IGNORE_INDEX
from napari_unet_loop.core.training.augment import (
    NO_AUGMENTATION,
    AugmentSettings,
    PatchSampler,
    crop,
    elastic_deform,
    resize_pair,
)

GEOMETRY_ONLY = AugmentSettings(gain=(1.0, 1.0), offset=(0.0, 0.0), gamma=(1.0, 1.0))
NO_ZOOM = AugmentSettings(zoom=(1.0, 1.0), gain=(1.0, 1.0), offset=(0.0, 0.0), gamma=(1.0, 1.0))


def blocks(shape=(96, 80), seed=0, classes=3, unlabelled=0.1):
    """A label image of ``classes`` classes in 8x8 blocks, with some pixels unlabelled."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, classes, (shape[0] // 8 + 1, shape[1] // 8 + 1))
    label = np.kron(coarse, np.ones((8, 8), int))[: shape[0], : shape[1]]
    label[rng.random(shape) < unlabelled] = IGNORE_INDEX
    return label.astype(np.int16)


def test_crop_pads_labels_with_ignore():
    image = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    label = np.ones((20, 30), np.int16)
    img, lbl = crop(image, label, -5, -3, 64)
    assert img.shape == lbl.shape == (64, 64)
    assert (lbl == 1).sum() == 20 * 30
    assert np.array_equal(img[5:25, 3:33], image)
    assert (lbl[:5] == IGNORE_INDEX).all() and (lbl[25:] == IGNORE_INDEX).all()


def test_small_image_is_padded_with_ignore():
    image = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    label = np.zeros((20, 30), np.int16)
    sampler = PatchSampler([image], [label], 64, settings=NO_ZOOM)
    img, lbl = sampler.sample(np.random.default_rng(1))
    assert img.shape == (1, 64, 64) and lbl.shape == (64, 64)
    assert (lbl == 0).sum() == 20 * 30
    assert (lbl == IGNORE_INDEX).sum() == 64 * 64 - 20 * 30


@pytest.mark.parametrize("seed", range(5))
def test_geometric_augmentation_keeps_image_and_label_aligned(seed):
    label = blocks(seed=seed)
    image = label.astype(np.float32)
    sampler = PatchSampler([image], [label], 48, settings=NO_ZOOM)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        img, lbl = sampler.sample(rng)
        labelled = lbl != IGNORE_INDEX
        assert np.array_equal(img[0][labelled], lbl[labelled].astype(np.float32))


@pytest.mark.parametrize("seed", range(3))
def test_zoom_keeps_image_and_label_aligned(seed):
    label = blocks(seed=seed, classes=2, unlabelled=0.0)
    image = label.astype(np.float32)
    sampler = PatchSampler([image], [label], 48, settings=GEOMETRY_ONLY)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        img, lbl = sampler.sample(rng)
        difference = np.abs(img[0] - lbl)
        # Bilinear blends only where the label changes, and the nearest source pixel always
        # weighs at least 1/4; a label off by a pixel would differ by a full 1 somewhere.
        edges = ndimage.binary_dilation(ndimage.morphological_gradient(lbl, size=3) > 0)
        assert (difference[~edges] < 1e-5).all()
        assert difference.max() <= 0.75 + 1e-5


@pytest.mark.parametrize("seed", range(3))
def test_elastic_deformation_keeps_image_and_label_aligned(seed):
    label = blocks((64, 64), seed=seed, classes=2, unlabelled=0.0)
    image = label.astype(np.float32)[..., None]
    img, lbl = elastic_deform(image, label, np.random.default_rng(seed), 6.0)
    assert img.shape == image.shape and lbl.shape == label.shape and lbl.dtype == label.dtype
    assert (lbl != label).mean() > 0.05
    # Bilinear and nearest-neighbour sampling of one displacement agree away from edges.
    edges = ndimage.binary_dilation(ndimage.morphological_gradient(lbl, size=3) > 0)
    assert (np.abs(img[..., 0] - lbl)[~edges] < 1e-5).all()


def test_elastic_deformation_of_zero_strength_changes_nothing():
    label = blocks((32, 32), unlabelled=0.2)
    image = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    img, lbl = elastic_deform(image, label, np.random.default_rng(0), 0.0)
    assert np.allclose(img, image) and np.array_equal(lbl, label)


def test_sampler_applies_elastic_deformation_when_asked():
    label = blocks(unlabelled=0.0)
    image = label.astype(np.float32)
    plain = PatchSampler([image], [label], 48, settings=NO_ZOOM)
    elastic = PatchSampler(
        [image],
        [label],
        48,
        settings=AugmentSettings(
            zoom=(1.0, 1.0), gain=(1.0, 1.0), offset=(0.0, 0.0), gamma=(1.0, 1.0), elastic=6.0
        ),
    )
    _, plain_label = plain.sample(np.random.default_rng(3))
    _, elastic_label = elastic.sample(np.random.default_rng(3))
    assert not np.array_equal(plain_label, elastic_label)


def test_resize_pair_uses_one_grid_for_image_and_label():
    label = np.kron(np.array([[0, 1], [2, 0]]), np.ones((16, 16), int))
    img, lbl = resize_pair(label.astype(np.float32), label, 20)
    assert img.shape == lbl.shape == (20, 20)
    assert np.array_equal(np.rint(img[:8, :8]), lbl[:8, :8])
    assert np.array_equal(lbl[:10, 10:], np.ones((10, 10)))
    rgb, _ = resize_pair(np.stack([label] * 3, -1).astype(np.float32), label, 40)
    assert rgb.shape == (40, 40, 3)


def test_intensity_jitter_changes_the_image_only():
    rng = np.random.default_rng(0)
    image = rng.random((64, 64)).astype(np.float32)
    label = rng.integers(0, 2, (64, 64))
    plain = PatchSampler([image], [label], 32, settings=GEOMETRY_ONLY)
    jittered = PatchSampler([image], [label], 32, settings=AugmentSettings())
    img_a, lbl_a = plain.sample(np.random.default_rng(5))
    img_b, lbl_b = jittered.sample(np.random.default_rng(5))
    assert np.array_equal(lbl_a, lbl_b)
    assert not np.allclose(img_a, img_b)
    assert img_b.dtype == np.float32


def test_patches_prefer_labelled_pixels():
    image = np.zeros((512, 512), np.float32)
    label = np.full((512, 512), IGNORE_INDEX, np.int16)
    label[400:403, 30:60] = 1  # one short brush stroke
    sampler = PatchSampler([image], [label], 64)
    rng = np.random.default_rng(0)
    hits = sum((sampler.sample(rng)[1] != IGNORE_INDEX).any() for _ in range(100))
    assert hits >= 80


def test_unlabelled_images_are_skipped_and_all_unlabelled_rejected():
    image = np.zeros((32, 32), np.float32)
    empty = np.full((32, 32), IGNORE_INDEX)
    full = np.ones((32, 32), int)
    sampler = PatchSampler([image, image], [empty, full], 16, settings=NO_AUGMENTATION)
    rng = np.random.default_rng(0)
    assert all((sampler.sample(rng)[1] == 1).all() for _ in range(10))
    with pytest.raises(ValueError):
        PatchSampler([image], [empty], 16)


def test_batches_are_seeded_and_rgb_is_channels_first():
    rng = np.random.default_rng(0)
    image = rng.random((50, 60, 3)).astype(np.float32)
    label = rng.integers(0, 2, (50, 60))
    sampler = PatchSampler([image], [label], 32)
    a = sampler.batch(3, np.random.default_rng(7))
    b = sampler.batch(3, np.random.default_rng(7))
    assert a[0].shape == (3, 3, 32, 32) and a[1].shape == (3, 32, 32)
    assert a[0].dtype == np.float32 and a[1].dtype == np.int64
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = sampler.batch(3, np.random.default_rng(8))
    assert not np.array_equal(a[0], c[0])

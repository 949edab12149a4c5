"""Autosaved corrections on disk, and training pairs built from corrected slices."""

import numpy as np
import pytest

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.training.corrections import (
    CorrectionStore,
    default_folder,
    home_folder,
    image_fingerprint,
    training_pairs,
)
from napari_unet_loop.core.training.train import IGNORE_INDEX


def _slice(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, (16, 20), dtype=np.uint8), rng.random((16, 20)) > 0.7


def test_save_then_load_round_trips_each_slice(tmp_path):
    store = CorrectionStore(tmp_path / "c")
    saved = {z: _slice(z) for z in (0, 3, 12)}
    for z, (labels, mask) in saved.items():
        store.save(z, labels, mask)
    assert sorted(p.name for p in store.folder.iterdir()) == [
        "slice_0000.npz",
        "slice_0003.npz",
        "slice_0012.npz",
    ]
    loaded = CorrectionStore(tmp_path / "c").load()
    assert sorted(loaded) == [0, 3, 12]
    for z, (labels, mask) in saved.items():
        np.testing.assert_array_equal(loaded[z][0], labels)
        np.testing.assert_array_equal(loaded[z][1], mask)
        assert loaded[z][0].dtype == np.uint8 and loaded[z][1].dtype == bool


def test_saving_again_replaces_the_slice_and_leaves_no_temporary_file(tmp_path):
    store = CorrectionStore(tmp_path)
    store.save(1, *_slice(1))
    labels, mask = _slice(2)
    store.save(1, labels, mask)
    assert [p.name for p in tmp_path.iterdir()] == ["slice_0001.npz"]
    np.testing.assert_array_equal(store.load()[1][0], labels)


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    store = CorrectionStore(tmp_path)
    labels, mask = _slice(1)
    store.save(5, labels, mask)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        store.save(5, *_slice(9))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["slice_0005.npz"]
    np.testing.assert_array_equal(store.load()[5][0], labels)


def test_load_of_a_missing_folder_is_empty_and_remove_deletes(tmp_path):
    assert CorrectionStore(tmp_path / "none").load() == {}
    store = CorrectionStore(tmp_path)
    store.save(2, *_slice(2))
    store.remove(2)
    store.remove(7)
    assert store.load() == {}


def test_a_corrupt_file_is_a_clear_error(tmp_path):
    (tmp_path / "slice_0001.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="slice_0001.npz"):
        CorrectionStore(tmp_path).load()


def test_mismatched_mask_is_refused(tmp_path):
    with pytest.raises(ValueError, match="differ"):
        CorrectionStore(tmp_path).save(0, np.zeros((4, 4), np.uint8), np.zeros((4, 5), bool))


def test_folders_beside_the_image_or_under_home(tmp_path, monkeypatch):
    assert default_folder(tmp_path / "cells.tif") == tmp_path / "cells.unet-loop-corrections"
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = home_folder("EM membranes / sample", "abc")
    assert folder == tmp_path / ".napari-unet-loop" / "corrections" / "EM_membranes_sample-abc"


def test_fingerprint_tells_images_apart():
    a = np.zeros((3, 8, 8), np.uint8)
    b = a.copy()
    b[0, 1, 1] = 1
    assert image_fingerprint(a) == image_fingerprint(a.copy())
    assert image_fingerprint(a) != image_fingerprint(b)
    assert image_fingerprint(a) != image_fingerprint(a[:2])


@pytest.fixture
def stack():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (4, 12, 12), dtype=np.uint8)
    labels = rng.integers(0, 2, (4, 12, 12), dtype=np.uint8)
    return image, labels


def test_dense_pairs_take_whole_edited_slices(stack):
    image, labels = stack
    images, targets = training_pairs(image, labels, [1, 3], num_classes=2)
    assert len(images) == 2
    np.testing.assert_array_equal(images[1], image[3])
    np.testing.assert_array_equal(targets[0], labels[1])
    assert targets[0].dtype == np.int16


def test_sparse_pairs_ignore_unpainted_pixels(stack):
    image, labels = stack
    mask = np.zeros((12, 12), bool)
    mask[2:5, 3:9] = True
    images, targets = training_pairs(
        image, labels, [0, 2], num_classes=2, painted={2: mask}, sparse=True
    )
    assert len(targets) == 1  # slice 0 has no painted pixel
    np.testing.assert_array_equal(images[0], image[2])
    assert (targets[0][~mask] == IGNORE_INDEX).all()
    np.testing.assert_array_equal(targets[0][mask], labels[2][mask])


def test_sparse_mode_checks_only_painted_values(stack):
    image, labels = stack
    labels = labels.copy()
    labels[1, 0, 0] = 7  # an unpainted stray value does not matter in sparse mode
    mask = np.zeros((12, 12), bool)
    mask[5, 5] = True
    _, targets = training_pairs(image, labels, [1], num_classes=2, painted={1: mask}, sparse=True)
    assert (targets[0] != IGNORE_INDEX).sum() == 1
    with pytest.raises(InputError, match="7"):
        training_pairs(image, labels, [1], num_classes=2)


def test_single_2d_image_is_slice_zero():
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    labels = (image > 30).astype(np.uint8)
    images, targets = training_pairs(image, labels, [0], num_classes=2)
    np.testing.assert_array_equal(images[0], image)
    np.testing.assert_array_equal(targets[0], labels)


def test_rgb_stack_pairs_keep_colour():
    image = np.zeros((2, 8, 8, 3), np.uint8)
    labels = np.zeros((2, 8, 8), np.uint8)
    images, _ = training_pairs(image, labels, [1], num_classes=2)
    assert images[0].shape == (8, 8, 3)


@pytest.mark.parametrize(
    ("slices", "kwargs", "message"),
    [
        ([], {}, "no edited slices"),
        ([9], {}, "out of range"),
        ([0], {"sparse": True}, "painted pixels"),
    ],
)
def test_bad_requests_are_clear_errors(stack, slices, kwargs, message):
    image, labels = stack
    with pytest.raises(InputError, match=message):
        training_pairs(image, labels, slices, num_classes=2, **kwargs)


def test_label_values_beyond_the_classes_are_refused(stack):
    image, labels = stack
    with pytest.raises(InputError, match="classes 0..1"):
        training_pairs(image, labels * 255, [0], num_classes=2)


def test_image_and_labels_of_other_shapes_are_refused(stack):
    image, labels = stack
    with pytest.raises(InputError, match="shape"):
        training_pairs(image[:, :10], labels, [0], num_classes=2)

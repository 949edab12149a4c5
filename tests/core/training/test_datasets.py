import numpy as np
import tifffile

from napari_unet_loop.core.evaluation.labelmap import parse_label_map
from napari_unet_loop.core.training.datasets import load_pairs, separate_touching


def two_touching_squares():
    labels = np.zeros((10, 12), np.uint16)
    labels[2:8, 1:6] = 3
    labels[2:8, 6:11] = 7
    return labels


def test_touching_objects_get_a_two_pixel_gap():
    labels = two_touching_squares()
    apart = separate_touching(labels)
    assert apart.dtype == labels.dtype
    assert (apart[2:8, 5] == 0).all() and (apart[2:8, 6] == 0).all()
    assert (apart[2:8, 1:5] == 3).all() and (apart[2:8, 7:11] == 7).all()
    assert labels[2, 5] == 3  # the input is left alone


def test_objects_apart_and_background_are_unchanged():
    labels = np.zeros((12, 12), np.int32)
    labels[1:4, 1:4] = 1
    labels[6:10, 6:10] = 2
    assert np.array_equal(separate_touching(labels), labels)
    assert not separate_touching(np.zeros((5, 5), np.uint8)).any()


def test_objects_touching_at_a_corner_are_separated_too():
    labels = np.zeros((6, 6), np.uint8)
    labels[0:3, 0:3] = 1
    labels[3:6, 3:6] = 2
    apart = separate_touching(labels)
    assert apart[2, 2] == 0 and apart[3, 3] == 0 and apart[0, 0] == 1 and apart[5, 5] == 2


def test_load_pairs_separates_before_the_label_map(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "a.tif", np.ones((10, 12), np.uint8))
    tifffile.imwrite(tmp_path / "masks" / "a.tif", two_touching_squares())
    label_map = parse_label_map("0:0,*:1")
    plain = load_pairs(tmp_path / "images", tmp_path / "masks", label_map)
    apart = load_pairs(tmp_path / "images", tmp_path / "masks", label_map, touching_apart=True)
    assert plain.labels[0][2:8, 1:11].all()
    assert apart.labels[0].sum() == plain.labels[0].sum() - 12

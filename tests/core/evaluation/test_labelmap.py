import numpy as np
import pytest

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.evaluation.labelmap import (
    check_class_indices,
    parse_index_list,
    parse_label_map,
)


def test_isbi_map_inverts_binary_labels():
    labels = np.array([[0, 255], [255, 255]], np.uint8)
    assert parse_label_map("255:0,0:1")(labels).tolist() == [[1, 0], [0, 0]]


def test_star_maps_every_other_value():
    instances = np.array([0, 3, 17, 0], np.uint16)
    assert parse_label_map("0:0,*:1")(instances).tolist() == [0, 1, 1, 0]


def test_unmapped_value_is_an_error():
    with pytest.raises(InputError, match="not in the label map"):
        parse_label_map("0:0")(np.array([0, 5]))


@pytest.mark.parametrize("text", ["0-1-2", "a:b", "255"])
def test_bad_map_text(text):
    with pytest.raises(InputError):
        parse_label_map(text)


def test_index_lists():
    assert parse_index_list("0-3") == [0, 1, 2, 3]
    assert parse_index_list("5,0,2-3") == [0, 2, 3, 5]
    with pytest.raises(InputError, match="out of range"):
        parse_index_list("24-30", 30)
    with pytest.raises(InputError):
        parse_index_list("x")


def test_class_index_check_suggests_a_map():
    check_class_indices(np.array([0, 1]), 2)
    with pytest.raises(InputError, match="255:0,0:1"):
        check_class_indices(np.array([0, 255]), 2)

import numpy as np
import pytest

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.evaluation.labelmap import (
    check_class_indices,
    class_map,
    distinct_values,
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


def test_distinct_values_of_integers_and_floats():
    data = np.array([[5, 0], [5, 300]], np.uint16)
    np.testing.assert_array_equal(distinct_values(data), [0, 5, 300])
    np.testing.assert_array_equal(distinct_values(np.array([-1, 2, -1])), [-1, 2])
    np.testing.assert_array_equal(distinct_values(np.array([0.5, 0.0])), [0.0, 0.5])
    np.testing.assert_array_equal(distinct_values(np.array([True, False])), [0, 1])


def test_class_indices_pass_through_unchanged():
    data = np.array([[0, 1], [2, 1]], np.uint8)
    classes, note = class_map(data, 3)
    np.testing.assert_array_equal(classes, data)
    assert note == ""


def test_isbi_labels_map_by_sorted_values_and_invert():
    isbi = np.array([[255, 0], [255, 255]], np.uint8)  # 255 = interior, 0 = membrane
    classes, note = class_map(isbi, 2)
    np.testing.assert_array_equal(classes, [[1, 0], [1, 1]])
    assert "0→0" in note and "255→1" in note
    classes, note = class_map(isbi, 2, invert=True)
    np.testing.assert_array_equal(classes, [[0, 1], [0, 0]])
    assert "inverted" in note


def test_instance_labels_are_binarised_for_two_classes():
    instances = np.array([[0, 3], [7, 0]], np.uint16)
    classes, note = class_map(instances, 2)
    np.testing.assert_array_equal(classes, [[0, 1], [1, 0]])
    assert "binarised" in note


def test_three_grey_levels_map_to_three_classes():
    data = np.array([0, 128, 255, 128], np.uint8)
    classes, _ = class_map(data, 3)
    np.testing.assert_array_equal(classes, [0, 1, 2, 1])


def test_unmappable_values_and_bad_invert_are_clear_errors():
    with pytest.raises(InputError, match="exactly 3 distinct"):
        class_map(np.array([0, 10, 20, 30]), 3)
    with pytest.raises(InputError, match="two classes"):
        class_map(np.array([0, 1, 2]), 3, invert=True)

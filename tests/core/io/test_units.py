import numpy as np
import pytest

from napari_unet_loop.core.io.read import read_stack
from napari_unet_loop.core.io.units import imagej_word, ome_tiff_symbol, unit_name
from napari_unet_loop.core.io.write import open_label_writer, write_labels

NAMES = ["labels.tif", "labels.ome.tif", "labels.zarr"]


def test_spellings_map_to_one_name_and_back_to_each_formats_own():
    spellings = ("µm", "um", "micron", "Micrometre", "μm", "\\u00B5m")
    assert {unit_name(t) for t in spellings} == {"micrometer"}
    assert unit_name("nm") == "nanometer"
    assert unit_name("pixel") is None and unit_name(None) is None
    assert ome_tiff_symbol("nanometer") == "nm" and imagej_word("micrometer") == "micron"
    assert ome_tiff_symbol(None) == "µm"


@pytest.mark.parametrize("name", NAMES)
def test_a_stack_in_nanometres_is_written_and_read_back_in_nanometres(tmp_path, name):
    labels = np.zeros((2, 16, 16), np.uint8)
    labels[:, 4:8, 4:8] = 1
    write_labels(tmp_path / name, labels, scale=(40.0, 4.0, 4.0), unit="nm")
    with read_stack(tmp_path / name) as stack:
        assert stack.scale == pytest.approx((40.0, 4.0, 4.0))
        assert stack.unit == "nanometer"


@pytest.mark.parametrize("name", NAMES)
def test_a_scale_without_a_unit_is_in_micrometres_and_no_scale_has_no_unit(tmp_path, name):
    labels = np.ones((16, 16), np.uint8)
    write_labels(tmp_path / name, labels, scale=(0.5, 0.5))
    with read_stack(tmp_path / name) as stack:
        assert stack.unit == "micrometer"
    write_labels(tmp_path / f"plain-{name}", labels)
    with read_stack(tmp_path / f"plain-{name}") as stack:
        assert stack.unit is None


def test_probabilities_in_a_plain_zarr_keep_their_unit(tmp_path):
    with open_label_writer(
        tmp_path / "p.zarr", scale=(2.0, 2.0), unit="nm", dtype=np.float32, shape=(8, 8)
    ) as writer:
        writer.write(np.zeros((8, 8), np.float32))
    with read_stack(tmp_path / "p.zarr") as stack:
        assert stack.unit == "nanometer"

"""CSV export."""

import csv

import pytest

from napari_unet_loop.app.csv_export import write_csv
from napari_unet_loop.core.errors import InputError


def test_write_csv_is_atomic_and_readable(tmp_path):
    path = write_csv(tmp_path / "m.csv", [["a", "b"], [1, 2.5], []])
    assert list(csv.reader(path.open())) == [["a", "b"], ["1", "2.5"], []]
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]
    with pytest.raises(InputError, match="does not exist"):
        write_csv(tmp_path / "nope" / "m.csv", [["a"]])

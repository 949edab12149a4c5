from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unet_loop.app.batch_job import (
    FORMATS,
    FileDone,
    FileStarted,
    batch,
    input_files,
    output_path,
    read_output,
)
from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.model.modelfile import new_model


def test_output_names_drop_the_input_suffix_and_ome():
    folder = Path("out")
    assert output_path(Path("a/stack.tif"), folder) == folder / "stack_labels.tif"
    assert output_path(Path("b.ome.tif"), folder, FORMATS["OME-Zarr"]) == folder / "b_labels.zarr"


def test_a_folder_gives_its_tiffs_but_not_earlier_outputs(tmp_path):
    for name in ("a.tif", "b.TIFF", "a_labels.tif", "a_labels.ome.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in input_files(str(tmp_path))] == ["a.tif", "b.TIFF"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "no TIFF files"), ("missing.tif", "no such file"), ("setup.cfg", "not a TIFF")],
)
def test_bad_inputs_are_refused_in_one_line(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "setup.cfg").write_text("")
    with pytest.raises(InputError, match=message):
        input_files(text)


def test_the_job_segments_every_file_and_the_output_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for name in ("one.tif", "two.tif"):
        tifffile.imwrite(tmp_path / name, rng.random((2, 32, 32), dtype=np.float32))
        files.append(tmp_path / name)
    model = new_model(["background", "object"], depth=2, base_channels=4)
    (tmp_path / "out").mkdir()
    jobs = batch(files, tmp_path / "out", None, model, "cpu", False, FORMATS["TIFF"])
    items = []
    try:
        while True:
            items.append(next(jobs))
    except StopIteration as stop:
        assert stop.value is model
    started = [i for i in items if isinstance(i, FileStarted)]
    done = [i.output for i in items if isinstance(i, FileDone)]
    assert [(s.index, s.count) for s in started] == [(0, 2), (1, 2)]
    assert [p.name for p in done] == ["one_labels.tif", "two_labels.tif"]
    (opened,) = read_output(done[0])
    assert opened.name == "one_labels" and opened.data.shape == (2, 32, 32)

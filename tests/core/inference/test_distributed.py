"""Segmenting dask arrays in blocks with a halo, locally and on a dask.distributed cluster."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.inference import distributed
from napari_unet_loop.core.inference.batch import segment_file
from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.io.read import read_image
from napari_unet_loop.core.model.modelfile import new_model, save_model
from napari_unet_loop.core.model.normalize import Normalization


@pytest.fixture
def model():
    # depth 2: the output depends on input up to 21 px away, well inside a 32 px halo
    return new_model(["background", "membrane"], depth=2, base_channels=4, seed=3)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(3, 160, 200), (150, 90), (2, 100, 90, 3)])
def test_blocks_give_the_whole_image_labels(model, rng, shape):
    image = rng.integers(0, 255, shape, dtype=np.uint8)
    labels = distributed.segment_dask(da.from_array(image), model, chunk_size=48, halo=32)
    assert labels.chunks[-1][0] == 48  # several blocks per slice
    np.testing.assert_array_equal(labels.compute(), predict(image, model).labels)


def test_fixed_normalisation_gives_the_whole_image_labels_without_a_first_pass(rng, monkeypatch):
    monkeypatch.setattr(distributed, "_slice_parameters", None)  # a first pass would fail
    model = new_model(
        ["background", "membrane"],
        depth=2,
        base_channels=4,
        seed=3,
        normalization=Normalization(mode="scale", scale=255.0),
    )
    image = rng.integers(0, 255, (2, 100, 120), dtype=np.uint8)
    labels = distributed.segment_dask(da.from_array(image), model, chunk_size=48, halo=32)
    np.testing.assert_array_equal(labels.compute(), predict(image, model).labels)


def test_sizes_are_rounded_to_the_pooling_grid(model, rng):
    image = rng.integers(0, 255, (1, 100, 100), dtype=np.uint8)
    labels = distributed.segment_dask(image, model, chunk_size=30, halo=20)
    assert labels.chunks[1][0] == 32
    with pytest.raises(InputError, match="chunk size"):
        distributed.segment_dask(image, model, chunk_size=0)


@pytest.mark.slow
def test_a_cluster_of_two_processes_gives_the_single_process_result(model, rng, tmp_path):
    from distributed import Client, LocalCluster

    image = rng.integers(0, 255, (4, 130, 150), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", image, photometric="minisblack")
    model_path = save_model(model, tmp_path / "tiny.safetensors")
    single = segment_file(tmp_path / "stack.tif", tmp_path / "single.tif", model=model_path)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        out = segment_file(
            tmp_path / "stack.tif",
            tmp_path / "cluster.zarr",
            model=model_path,
            scheduler=cluster.scheduler_address,
            chunk_size=64,
        )
        held = client.run(distributed.loaded_models)
    np.testing.assert_array_equal(read_image(out / "labels/classes"), read_image(single))
    assert len(held) == 2 and all(len(keys) == 1 for keys in held.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cluster.zarr",
        "single.tif",
        "stack.tif",
        "tiny.safetensors",
    ]


def test_scheduler_errors_are_one_line(model, tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((2, 32, 32), np.uint8))
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(InputError, match="cannot reach the dask scheduler"),
    ):
        segment_file(
            tmp_path / "stack.tif", tmp_path / "out.tif", model=model, scheduler="tcp://127.0.0.1:1"
        )
    with pytest.raises(InputError, match="not available with a scheduler"):
        segment_file(
            tmp_path / "stack.tif",
            tmp_path / "out.tif",
            model=model,
            scheduler="local",
            instances=True,
        )
    assert not (tmp_path / "out.tif").exists()

"""Segment dask arrays, on dask's local scheduler or a ``dask.distributed`` cluster.

The image is cut into blocks of ``chunk_size`` pixels per side, one slice deep, and each block
is segmented with ``halo`` pixels of context from its neighbours (``map_overlap``), then
trimmed back: the same context the single-process tiling gives a window, so the labels match
:func:`core.inference.predict` (whole-image inference) up to float rounding. Two things keep
them equal:

- a slice is normalised as a whole in one process, so a first pass computes each slice's
  normalisation parameters (percentile mode; the others are fixed numbers), and every block
  of that slice uses them;
- block borders lie on the network's pooling grid (``chunk_size`` and ``halo`` are rounded
  to multiples of ``2**depth``).

The model travels once to each worker, as its safetensors bytes in a worker plugin, and is
kept there by content hash (on the worker's GPU when it has one): tasks name it by that hash
and never carry weights. In this process (dask's local scheduler) it runs on the CPU. dask and
distributed are imported only by this module.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import InputError, one_line
from ..io.read import read_stack
from ..model.channels import model_channels
from ..model.devices import get_device, to_device
from ..model.modelfile import Model, model_from_bytes, model_to_bytes
from ..model.unet import pad_to_multiple
from .predict import DEFAULT_HALO, image_layout, ready_network

if TYPE_CHECKING:
    import dask.array as da

DEFAULT_CHUNK_SIZE = 1024

# Models this process can use, by the hash of their bytes; filled by install_model (the client
# process) or by the worker plugin (each worker process).
_MODELS: dict[str, Model] = {}


def install_model(model: Model, client=None) -> str:
    """Make ``model`` available to the blocks' tasks; return the key they find it by.

    With a ``dask.distributed`` client every worker (also one that joins later) loads it once.
    """
    data = model_to_bytes(model)
    key = hashlib.sha256(data).hexdigest()[:16]
    ready_network(model.network, torch.device("cpu"))  # once here, not racing in each task
    _MODELS.setdefault(key, model)
    if client is not None:
        client.register_plugin(_model_plugin(key, data), name=f"napari-unet-loop-{key}")
    return key


def _model_plugin(key: str, data: bytes):
    from distributed import WorkerPlugin

    class ModelPlugin(WorkerPlugin):
        """Loads the model into the worker process when the worker starts or registers it."""

        def setup(self, worker) -> None:
            # By import, not by closure: this class travels by value, and a closure would
            # fill a copy of the registry instead of the worker's own module.
            from napari_unet_loop.core.inference.distributed import load_model_bytes

            # torch would take every core for each task; the worker's threads are its share
            torch.set_num_threads(max(1, worker.state.nthreads))
            load_model_bytes(key, data)

    return ModelPlugin()


def load_model_bytes(key: str, data: bytes) -> None:
    """Load a model from its bytes into this process's registry, once, on its best device."""
    if key not in _MODELS:
        model = model_from_bytes(data, f"model {key}")
        ready_network(model.network, get_device("auto"))
        _MODELS[key] = model


def loaded_models() -> list[str]:
    """Keys of the models loaded in this process (run on workers to check what they hold)."""
    return sorted(_MODELS)


def _model(key: str) -> Model:
    try:
        return _MODELS[key]
    except KeyError:
        raise RuntimeError(
            f"model {key} is not loaded in this process: call install_model first"
        ) from None


def _slice_parameters(block: np.ndarray, *, key: str, rgb: bool) -> np.ndarray:
    """Normalisation (offset, divisor) of each whole slice in ``block``: shape (Z, 2)."""
    model = _model(key)
    return np.array(
        [model.normalization.parameters(model_channels(s, model, rgb)) for s in block],
        dtype=np.float64,
    )


def _segment_block(
    block: np.ndarray, *, key: str, rgb: bool, parameters: np.ndarray, block_info=None
) -> np.ndarray:
    """Labels (uint8) of one block with its halo; map_overlap trims the halo afterwards."""
    model = _model(key)
    first = block_info[0]["array-location"][0][0]
    network = model.network  # made ready for its device when it was installed
    device = next(network.parameters()).device
    labels = []
    for offset, raw in enumerate(block):
        image = model.normalization.apply(
            model_channels(raw, model, rgb), parameters[first + offset]
        )
        channels = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
        x = torch.from_numpy(np.ascontiguousarray(channels, dtype=np.float32))[None]
        x, (height, width) = pad_to_multiple(x, model.config.size_multiple)
        padded = to_device(x, device)
        with torch.inference_mode():
            probabilities = torch.softmax(network(padded).float(), dim=1)
        labels.append(probabilities[0, :, :height, :width].argmax(0).to(torch.uint8).cpu().numpy())
    return np.stack(labels)


def _all_slice_parameters(stack, model: Model, key: str, rgb: bool, client) -> np.ndarray:
    """(Z, 2) normalisation parameters; a pass over the data only when they depend on it."""
    fixed = model.normalization.fixed_parameters()
    if fixed is not None:
        return np.tile(np.array(fixed, dtype=np.float64), (stack.shape[0], 1))
    whole_slices = stack.rechunk({0: 1, 1: -1, 2: -1, **({3: -1} if rgb else {})})
    slice_parameters = whole_slices.map_blocks(
        _slice_parameters,
        key=key,
        rgb=rgb,
        dtype=np.float64,
        drop_axis=[1, 2, 3] if rgb else [1, 2],
        new_axis=1,
        chunks=(1, 2),
    )
    if client is not None:
        return client.compute(slice_parameters).result()
    return slice_parameters.compute()


def _grid_multiple(value: int, multiple: int, what: str) -> int:
    rounded = -(-int(value) // multiple) * multiple
    if rounded < multiple:
        raise InputError(f"{what} must be at least {multiple} pixels, got {value}")
    return rounded


def segment_dask(
    image: da.Array,
    model: Model,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    halo: int = DEFAULT_HALO,
    rgb: bool | None = None,
    client=None,
) -> da.Array:
    """Lazy uint8 class labels of a dask array (shape as ``image``, less any colour axis).

    ``image`` is a 2D image, a Z×Y×X stack or their RGB forms. The per-slice normalisation
    pass is computed here (on ``client`` when given, else dask's default scheduler); the
    network runs when the result is computed or stored. ``model.network`` is moved to the CPU,
    where dask's local threads share it; cluster workers get their own copy.
    """
    import dask.array as da

    layout = image_layout(image.shape, rgb)
    if not isinstance(image, da.Array):
        image = da.asarray(image)
    stack = image if layout.is_stack else image[None]
    multiple = model.config.size_multiple
    chunk = _grid_multiple(chunk_size, multiple, "chunk size")
    halo = _grid_multiple(halo, multiple, "halo") if halo else 0
    key = install_model(model, client)
    colour = {3: -1} if layout.rgb else {}

    parameters = _all_slice_parameters(stack, model, key, layout.rgb, client)
    blocks = stack.rechunk({0: 1, 1: chunk, 2: chunk, **colour})
    colour_options = {"drop_axis": 3} if layout.rgb else {}
    colour_depth = {3: 0} if layout.rgb else {}
    # dask refuses a halo beyond the array; a block then sees the whole side, which is exact
    height, width = layout.slice_shape
    labels = blocks.map_overlap(
        _segment_block,
        depth={0: 0, 1: min(halo, height), 2: min(halo, width), **colour_depth},
        boundary="none",
        trim=True,
        dtype=np.uint8,
        key=key,
        rgb=layout.rgb,
        parameters=parameters,
        **colour_options,
    )
    return labels if layout.is_stack else labels[0]


def iter_slices(labels: da.Array, client=None, ahead: int = 4) -> Iterator[np.ndarray]:
    """Compute a lazy label stack slice by slice, in order, keeping ``ahead`` slices in flight.

    Memory holds only the slices in flight, so a stack larger than memory streams through.
    """
    if client is None:
        for z in range(labels.shape[0]):
            yield labels[z].compute()
        return
    pending: deque = deque()
    submitted = 0
    for _ in range(labels.shape[0]):
        while len(pending) < ahead and submitted < labels.shape[0]:
            pending.append(client.compute(labels[submitted]))
            submitted += 1
        yield pending.popleft().result()


@functools.lru_cache(maxsize=8)
def _open(path: str):
    # One open stack per file and process: workers read many slices of the same file.
    return read_stack(path)


def _read_slice(path: str, z: int) -> np.ndarray:
    return _open(path)[z]


def lazy_stack(path: str | os.PathLike) -> da.Array:
    """A file, folder or zarr that ``read_stack`` opens, as a dask array of one-slice chunks.

    Each worker opens the file itself, so workers need to see the same path.
    """
    import dask
    import dask.array as da

    path = str(Path(path).expanduser().absolute())
    with read_stack(path) as stack:
        shape, dtype, count, is_2d = stack.slice_shape, stack.dtype, len(stack), stack.is_2d
    read = dask.delayed(_read_slice, pure=True)
    slices = [da.from_delayed(read(path, z), shape, dtype) for z in range(count)]
    return slices[0] if is_2d else da.stack(slices)


_ADDRESS = re.compile(
    r"(?:(?:tcp|tls|ucx|ws|wss)://)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def check_address(address: str) -> None:
    """Refuse a scheduler address that is not "local" or ``[tcp|tls|ucx|ws|wss://]host[:port]``."""
    match = _ADDRESS.fullmatch(address)
    port = match and match.group("port")
    if address != "local" and (not match or (port and not 0 < int(port) < 65536)):
        raise InputError(
            f"--scheduler {address!r} is not an address: use tcp://HOST:PORT, tls://HOST:PORT "
            "or local"
        )


@contextlib.contextmanager
def connect(address: str) -> Iterator:
    """A ``distributed.Client`` for a scheduler address, or for a new local cluster ("local")."""
    check_address(address)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            "--scheduler needs dask.distributed: pip install 'napari-unet-loop[cluster]'"
        ) from None
    with contextlib.ExitStack() as stack:
        if address == "local":
            cluster = stack.enter_context(LocalCluster(processes=True, dashboard_address=None))
            address = cluster.scheduler_address
        try:
            client = stack.enter_context(Client(address))
        except (OSError, TimeoutError) as exc:
            raise InputError(
                f"cannot reach the dask scheduler at {address} ({one_line(exc)})"
            ) from None
        yield client

"""Run a model over 2D images and stacks, tile by tile: probabilities and labels out.

Each 2D slice is normalised whole with ``model.normalization`` (never per tile, so tiling
cannot change intensities), converted to the channels the model takes, padded once to the
network's size multiple and cut into overlapping windows (see ``tiling``). Windows from
consecutive slices share forward batches; their softmax outputs are blended into per-slice
float32 accumulators on the CPU while the network runs on the device. Slices are read lazily
(``stack[z]``) and dropped as soon as they are yielded, so memory does not grow with the
length of the stack. ``iter_predict`` is a generator: closing it between batches cancels.

Running out of device memory is not fatal: the batch is retried with half as many windows,
and at one window per batch the slices not yet handed out are redone with tiles half as large.
Each retry is announced with a ``RuntimeWarning``; the results do not change (see ``_run``).
"""

from __future__ import annotations

import contextlib
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import chain, islice
from typing import Any, Protocol

import numpy as np
import torch

from ..errors import Cancelled, DeviceMemoryError, InputError
from ..model.channels import model_channels
from ..model.devices import (
    free_cached_memory,
    get_device,
    is_out_of_memory,
    memory_format,
    to_device,
)
from ..model.folding import fold_batchnorm
from ..model.modelfile import Model
from ..model.precision import resolve_precision
from ..model.unet import pad_to_multiple
from .scale import resize_to
from .tiling import TileGrid, Window, make_grid, padded_length

# Defaults for the default network (depth 4, base 16). Its output at a pixel depends on input
# up to 93 px beyond a window edge on the pooling grid (6 * 2**depth - 3), and within that
# distance a trained net is far off: 0.8 in probability at the edge, still 2e-3 at 80 px. With
# a 128 px halo the zero-weight outer 96 px cover all of it, so tiles give the whole-image
# result up to float rounding whatever the weights (measured: 3e-7 on a trained ISBI net;
# 5e-5 at halo 112, 8e-4 at 96, 3e-2 at 64). Slices up to 512 px need a single window.
DEFAULT_TILE_SIZE = 512
DEFAULT_HALO = 128

# Windows per forward pass. On a GPU, several windows keep it busy. On a CPU one window is
# fastest: measured on 2 cores with the default net at 512², batch 4 costs 1.5× batch 1 per
# window (caches).
DEFAULT_BATCH_SIZE = 4
CPU_BATCH_SIZE = 1


def default_batch_size(device: torch.device) -> int:
    return CPU_BATCH_SIZE if device.type == "cpu" else DEFAULT_BATCH_SIZE


def ready_network(
    network: torch.nn.Module, device: torch.device, fold: bool = False
) -> torch.nn.Module:
    """``network`` on ``device`` in eval mode, in the memory layout that runs fastest there;
    with ``fold``, a copy with batch norm folded in (see ``core.model.folding``)."""
    network = network.to(device).eval()
    if fold:
        network = fold_batchnorm(network)
    return network.to(memory_format=memory_format(device))


class StackLike(Protocol):
    """An image or stack read slice by slice: numpy, memmap, dask, ``core.io.stack.Stack``."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> Any: ...

    def __getitem__(self, index: int, /) -> Any: ...


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` tiles have been through the network."""

    done: int
    total: int


@dataclass(frozen=True)
class SlicePrediction:
    """The result for slice ``index``: labels (Y, X) uint8, probabilities (C, Y, X) or None."""

    index: int
    labels: np.ndarray
    probabilities: np.ndarray | None


@dataclass(frozen=True)
class Prediction:
    """Probabilities (C, *spatial) float32 and labels (*spatial) uint8 for a whole input."""

    probabilities: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class ImageLayout:
    """How an input array is laid out: slices, colour, and the (Y, X) shape of one slice.

    ``scale`` resizes each slice before the network (see ``core.inference.scale``);
    ``network_shape`` is the (Y, X) shape the network then sees.
    """

    num_slices: int
    is_stack: bool
    rgb: bool
    slice_shape: tuple[int, int]
    scale: float = 1.0

    @property
    def network_shape(self) -> tuple[int, int]:
        if self.scale == 1.0:
            return self.slice_shape
        height, width = (max(int(round(n * self.scale)), 1) for n in self.slice_shape)
        return height, width


def image_layout(shape: tuple[int, ...], rgb: bool | None = None) -> ImageLayout:
    """Interpret ``shape`` as (Y,X), (Z,Y,X), (Y,X,3) or (Z,Y,X,3); a 4th channel is alpha.

    With ``rgb=None`` a last axis of 3 or 4 on a 3D or 4D array means colour.
    """
    shape = tuple(int(n) for n in shape)
    ndim = len(shape)
    if rgb is None:
        rgb = ndim in (3, 4) and shape[-1] in (3, 4)
    if rgb and (ndim not in (3, 4) or shape[-1] not in (3, 4)):
        raise InputError(
            f"an RGB image must be Y×X×3 or Z×Y×X×3 (or 4 with alpha), got shape {shape}"
        )
    spatial = shape[:-1] if rgb else shape
    if len(spatial) not in (2, 3):
        raise InputError(
            "expected a 2D image (Y×X), a stack (Z×Y×X) or an RGB image (Y×X×3 or Z×Y×X×3), "
            f"got shape {shape}"
        )
    if min(spatial) < 1:
        raise InputError(f"the image is empty: shape {shape}")
    is_stack = len(spatial) == 3
    return ImageLayout(spatial[0] if is_stack else 1, is_stack, rgb, spatial[-2:])


def prepare_slice(raw: np.ndarray, model: Model, rgb: bool) -> np.ndarray:
    """One raw slice → normalised float32 (in_channels, Y, X) network input.

    Normalization runs after :func:`model_channels`, on the whole slice.
    """
    image = model.normalization(model_channels(raw, model, rgb))
    channels = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
    # Always a fresh array: with mode "none" it could else be a read-only view of the input.
    return np.array(channels, dtype=np.float32, order="C")


@dataclass(eq=False)
class _SliceWork:
    """A slice in flight: padded input, blended sums, and how many tiles are still due."""

    index: int
    padded: torch.Tensor
    sums: np.ndarray
    remaining: int


def _read(stack: StackLike, layout: ImageLayout, index: int) -> np.ndarray:
    return np.asarray(stack[index] if layout.is_stack else stack)


def _tiles(
    stack: StackLike,
    model: Model,
    layout: ImageLayout,
    grid: TileGrid,
    in_flight: deque[_SliceWork],
    start: int,
) -> Iterator[tuple[_SliceWork, Window]]:
    """Every (slice, window) pair in order from slice ``start``, reading each slice only when
    its first tile is due.

    Each slice read joins ``in_flight``, where it stays until its result is handed out.
    """
    multiple = model.config.size_multiple
    for index in range(start, layout.num_slices):
        image = prepare_slice(_read(stack, layout, index), model, layout.rgb)
        if layout.scale != 1.0:
            image = np.ascontiguousarray(
                resize_to(image.transpose(1, 2, 0), layout.network_shape).transpose(2, 0, 1)
            )
        padded, _ = pad_to_multiple(torch.from_numpy(image)[None], multiple)
        del image  # only the padded copy is needed while the tiles run
        sums = np.zeros((model.num_classes, *grid.padded_shape), dtype=np.float32)
        work = _SliceWork(index, padded[0], sums, len(grid.windows))
        in_flight.append(work)
        for window in grid.windows:
            yield work, window


def _run_batch(
    batch: list[tuple[_SliceWork, Window]],
    network: torch.nn.Module,
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> None:
    """Send a batch of windows through the network and blend the softmax into their slices."""
    windows = torch.stack([work.padded[:, window.rows, window.cols] for work, window in batch])
    # Entered per batch, not around the generator: grad mode is thread state, and a context
    # held across a yield would leak into the consumer's code.
    with torch.inference_mode():
        x = to_device(windows, device)
        autocast = (
            torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        )
        with autocast:
            logits = network(x)
        probabilities = torch.softmax(logits.float(), dim=1).cpu().numpy()
    for (work, window), tile in zip(batch, probabilities, strict=True):
        work.sums[:, window.rows, window.cols] += tile * window.weights()
        work.remaining -= 1


def _try_batch(
    batch: list[tuple[_SliceWork, Window]],
    network: torch.nn.Module,
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> bool:
    """Run the batch as ``_run_batch`` does; False when the device ran out of memory.

    The network runs before anything is blended, so a batch that failed left no trace.
    """
    try:
        _run_batch(batch, network, device, amp_dtype)
    except RuntimeError as error:
        if not is_out_of_memory(error):
            raise
    else:
        return True
    # Freed out here, once the error and its traceback no longer hold the batch's tensors.
    free_cached_memory(device)
    return False


def _tile_size(grid: TileGrid) -> str:
    height, width = grid.window_shape
    return f"{height} px" if height == width else f"{height}×{width} px"


def _smaller_grid(grid: TileGrid, halo: int, multiple: int) -> TileGrid:
    """``grid`` with windows half as long, or as short as ``halo`` allows if that is longer.

    Raises ``DeviceMemoryError`` when they are that short already: nothing is left to shrink.
    """
    side = max(grid.window_shape)
    smallest = padded_length(2 * halo + multiple, multiple)  # what ``check_tiling`` accepts
    if side <= smallest:
        raise DeviceMemoryError(
            f"out of GPU memory even with 1 tile of {_tile_size(grid)} per batch, the smallest "
            f"that halo {halo} px allows: run on the CPU (--device cpu) or use a smaller halo "
            "and tile size"
        )
    return make_grid(grid.shape, max(side // 2, smallest), halo, multiple)


def _finish(
    work: _SliceWork,
    grid: TileGrid,
    weight_sum: np.ndarray,
    keep_probabilities: bool,
    layout: ImageLayout,
) -> SlicePrediction:
    height, width = grid.shape
    sums = work.sums[:, :height, :width]
    if layout.scale != 1.0:
        # Back to the image's own grid: probabilities are resampled, then the argmax taken.
        probabilities = sums / weight_sum[:height, :width]
        probabilities = resize_to(probabilities.transpose(1, 2, 0), layout.slice_shape)
        probabilities = np.ascontiguousarray(probabilities.transpose(2, 0, 1))
        labels = probabilities.argmax(axis=0).astype(np.uint8)
        return SlicePrediction(work.index, labels, probabilities if keep_probabilities else None)
    # Dividing by the (positive, class-independent) weight sum cannot change the argmax.
    labels = sums.argmax(axis=0).astype(np.uint8)
    if not keep_probabilities:
        return SlicePrediction(work.index, labels, None)
    probabilities = np.ascontiguousarray(sums / weight_sum[:height, :width])
    return SlicePrediction(work.index, labels, probabilities)


def iter_predict(
    stack: StackLike,
    model: Model,
    *,
    device: str | torch.device = "auto",
    tile_size: int = DEFAULT_TILE_SIZE,
    halo: int = DEFAULT_HALO,
    batch_size: int | None = None,
    rgb: bool | None = None,
    precision: str = "auto",
    keep_probabilities: bool = True,
    scale: float = 1.0,
) -> Iterator[Progress | SlicePrediction]:
    """Predict slice by slice, yielding ``Progress`` after each batch and each finished slice.

    ``stack`` is any 2D image, stack or RGB (stack) with ``.shape`` and ``stack[z]`` (numpy,
    memmap, dask, ``core.io.stack.Stack``); a 2D image comes back as slice 0. ``SlicePrediction``
    items arrive in slice order, each right after the batch that completes it. ``tile_size``
    is rounded down to a multiple of ``2**depth``. ``halo`` is the context a window gets on
    each inner side: its result there gets weight 0 over the outer three quarters and is
    blended with the neighbour's over the inner quarter. The default suits depth-4 nets; a net
    of depth d is exact once three quarters of the halo reach 6 * 2**d px. ``batch_size``
    windows go through the network at once (default: 1 on the CPU, 4 elsewhere).
    ``precision`` (auto, fp32, bf16, fp16) is the arithmetic the network runs in; ``auto`` is
    resolved by ``core.model.precision``. ``model.network`` is moved to the device, put in eval mode
    and, on the CPU, in channels-last layout.

    ``scale`` resizes each normalised slice by that factor before the network (objects the
    size the model was trained at; see ``core.inference.scale``) and the probabilities back to the
    slice's own grid, so results always have the input's shape.

    Options are checked and the device resolved right away; slices are read only as the
    generator runs. Closing the generator stops the work before the next batch.
    """
    if np.dtype(stack.dtype).kind not in "biuf":
        raise InputError(f"cannot segment an image of type {stack.dtype}: numbers expected")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if not (np.isfinite(scale) and 0.05 <= scale <= 20):
        raise InputError(f"scale must be between 0.05 and 20, got {scale}")
    layout = replace(image_layout(stack.shape, rgb), scale=float(scale))
    grid = make_grid(layout.network_shape, tile_size, halo, model.config.size_multiple)
    torch_device = get_device(device)
    batch_size = batch_size or default_batch_size(torch_device)
    amp_dtype = resolve_precision(precision, torch_device)
    return _run(
        stack, model, layout, grid, halo, torch_device, batch_size, amp_dtype, keep_probabilities
    )


def _run(
    stack: StackLike,
    model: Model,
    layout: ImageLayout,
    grid: TileGrid,
    halo: int,
    device: torch.device,
    batch_size: int,
    amp_dtype: torch.dtype | None,
    keep_probabilities: bool,
) -> Iterator[Progress | SlicePrediction]:
    """The work of ``iter_predict``, shrinking batches and then tiles when memory runs out.

    A batch that runs out of memory is retried with half as many windows, which cannot change
    any result. A single window that does not fit makes every slice not yet handed out start
    over on a grid of windows half as long (same halo, so the same result to float rounding);
    slices already handed out stay as they are. ``Progress.done`` never goes back: tiles of
    the dropped, unfinished slices stay counted, and ``total`` grows to ``done`` plus the tiles
    still to run on the new grid. When neither can shrink, ``DeviceMemoryError`` is raised.
    """
    # Not folded: on the 2-core EPYC, folding timed 0.6× to 2.7× under heavy shared load, no
    # clear gain; and folded weights rounded to bf16 fell to 99.88 % label agreement (99.95 %
    # unfolded). benchmarks/speed.py times it (row bF) for a decision on a quiet machine.
    network = ready_network(model.network, device)
    done = handed_out = 0
    while handed_out < layout.num_slices:
        weight_sum = grid.weight_sum()
        total = done + (layout.num_slices - handed_out) * len(grid.windows)
        in_flight: deque[_SliceWork] = deque()
        tiles = _tiles(stack, model, layout, grid, in_flight, handed_out)
        while batch := list(islice(tiles, batch_size)):
            if _try_batch(batch, network, device, amp_dtype):
                done += len(batch)
                del batch  # hold no slice beyond those in flight while suspended at a yield
                while in_flight and in_flight[0].remaining == 0:
                    yield _finish(in_flight.popleft(), grid, weight_sum, keep_probabilities, layout)
                    handed_out += 1
                yield Progress(done, total)
                continue
            noun = "tile" if len(batch) == 1 else "tiles"
            failed = f"out of GPU memory with {len(batch)} {noun} of {_tile_size(grid)} per batch"
            if len(batch) > 1:
                batch_size = len(batch) // 2
                message = f"{failed}; retrying with {batch_size}"
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                tiles = chain(batch, tiles)  # the same windows again, fewer at a time
                continue
            grid = _smaller_grid(grid, halo, model.config.size_multiple)
            message = f"{failed}; retrying with tiles of {_tile_size(grid)}"
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            del batch  # its slice is read again, for the new grid
            break


def predict(
    image: StackLike,
    model: Model,
    *,
    device: str | torch.device = "auto",
    tile_size: int = DEFAULT_TILE_SIZE,
    halo: int = DEFAULT_HALO,
    batch_size: int | None = None,
    rgb: bool | None = None,
    precision: str = "auto",
    scale: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Prediction:
    """Predict a whole 2D image, stack, RGB image or RGB stack.

    Returns probabilities (C, Y, X) or (C, Z, Y, X) float32 and labels (Y, X) or (Z, Y, X)
    uint8 (the most probable class). ``progress(done, total)`` is called after each batch of
    tiles; when ``should_stop()`` turns true, checked between batches, ``Cancelled`` is raised.
    Options are those of ``iter_predict``.
    """
    items = iter_predict(
        image,
        model,
        device=device,
        tile_size=tile_size,
        halo=halo,
        batch_size=batch_size,
        rgb=rgb,
        precision=precision,
        scale=scale,
    )
    layout = image_layout(image.shape, rgb)
    spatial = (layout.num_slices, *layout.slice_shape)
    labels = np.zeros(spatial, dtype=np.uint8)
    probabilities = np.zeros((model.num_classes, *spatial), dtype=np.float32)
    with contextlib.closing(items):
        for item in items:
            if isinstance(item, SlicePrediction):
                labels[item.index] = item.labels
                probabilities[:, item.index] = item.probabilities
                continue
            if progress is not None:
                progress(item.done, item.total)
            if should_stop is not None and should_stop():
                raise Cancelled("prediction cancelled")
    if not layout.is_stack:
        return Prediction(probabilities[:, 0], labels[0])
    return Prediction(probabilities, labels)

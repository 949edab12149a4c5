"""Running out of device memory during inference: smaller batches, then smaller tiles.

The memory limit is faked on the CPU by a network that raises ``torch.OutOfMemoryError`` for
inputs over a limit, so every path runs without a GPU.
"""

import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch

from napari_unet_loop.core.errors import DeviceMemoryError
from napari_unet_loop.core.inference.predict import Progress, SlicePrediction, iter_predict, predict
from napari_unet_loop.core.model import devices
from napari_unet_loop.core.model.devices import free_cached_memory, is_out_of_memory
from napari_unet_loop.core.model.modelfile import Model, new_model

# A depth-2 net sees 21 px past a window edge; halo 32 gives 0 weight over 24 px, so tiles of
# any size give the whole-slice result up to float rounding.
HALO = 32


def long_sighted_model() -> Model:
    """A depth-2 net with He-initialised convolutions, which use their whole receptive field
    (as a trained net does) so that a change of tiling would show."""
    model = new_model(["background", "a", "b"], in_channels=1, depth=2, base_channels=4, seed=0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.network.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                noise = torch.randn(module.weight.shape, generator=generator)
                module.weight.copy_(noise * (2 / module.weight[0].numel()) ** 0.5)
    return model


def random_stack(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


class FailingNet(torch.nn.Module):
    """Delegates to ``network`` but raises ``error(message)`` where ``fails(call, x)`` says."""

    def __init__(
        self,
        network: torch.nn.Module,
        fails: Callable[[int, torch.Tensor], bool],
        error: type[Exception] = torch.OutOfMemoryError,
        message: str = "CUDA out of memory (simulated)",
    ) -> None:
        super().__init__()
        self.network, self.config = network, network.config
        self.fails, self.error, self.message = fails, error, message
        self.input_shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        call = len(self.input_shapes)
        self.input_shapes.append(tuple(x.shape))
        if self.fails(call, x):
            raise self.error(self.message)
        return self.network(x)


def failing(model: Model, fails: Callable[[int, torch.Tensor], bool], **kwargs) -> Model:
    return Model(FailingNet(model.network, fails, **kwargs), model.class_names)


def messages(record: pytest.WarningsRecorder) -> list[str]:
    return [str(warning.message) for warning in record]


class RecordingStack:
    """A stack that notes which slices are read."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype = data, data.shape, data.dtype
        self.reads: list[int] = []

    def __getitem__(self, index: int) -> np.ndarray:
        self.reads.append(index)
        return self.data[index]


def test_out_of_memory_errors_are_recognised():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"))
    assert not is_out_of_memory(RuntimeError("CUDA error: an illegal memory access"))
    assert not is_out_of_memory(MemoryError("out of memory"))


def test_only_cuda_caches_are_emptied(monkeypatch):
    emptied = []
    monkeypatch.setattr(devices.torch.cuda, "empty_cache", lambda: emptied.append(True))
    free_cached_memory(torch.device("cpu"))
    assert emptied == []
    free_cached_memory(torch.device("cuda"))
    assert emptied == [True]


def test_a_batch_that_does_not_fit_is_retried_halved_with_the_same_result():
    model, stack = long_sighted_model(), random_stack((3, 150, 200))
    options = dict(device="cpu", tile_size=96, halo=HALO, batch_size=8)
    reference = predict(stack, model, **options)
    small = failing(model, lambda _call, x: len(x) > 3)
    seen = []
    with pytest.warns(RuntimeWarning) as record:
        result = predict(stack, small, progress=lambda *p: seen.append(p), **options)
    assert messages(record) == [
        "out of GPU memory with 8 tiles of 96 px per batch; retrying with 4",
        "out of GPU memory with 4 tiles of 96 px per batch; retrying with 2",
    ]
    shapes = small.network.input_shapes
    assert [s[0] for s in shapes[:3]] == [8, 4, 2] and all(s[0] <= 2 for s in shapes[2:])
    np.testing.assert_allclose(result.probabilities, reference.probabilities, atol=1e-6)
    np.testing.assert_array_equal(result.labels, reference.labels)
    # 3 slices of 3 x 5 windows of 96 px, 2 at a time.
    assert seen == [(done, 45) for done in [*range(2, 45, 2), 45]]


def test_a_tile_that_does_not_fit_alone_is_redone_smaller_with_the_same_result():
    model, data = long_sighted_model(), random_stack((3, 150, 200))
    options = dict(device="cpu", tile_size=192, halo=HALO, batch_size=1)
    reference = predict(data, model, **options)
    # Memory gets short at the 4th window, the second one of slice 1: 152 x 192 px no longer
    # fits, 96 px does.
    small = failing(model, lambda call, x: call >= 3 and max(x.shape[-2:]) > 100)
    stack = RecordingStack(data)
    with pytest.warns(RuntimeWarning) as record:
        items = list(iter_predict(stack, small, **options))
    assert messages(record) == [
        "out of GPU memory with 1 tile of 152×192 px per batch; retrying with tiles of 96 px"
    ]
    assert record[0].filename == __file__  # the warning points at the caller
    # Slice 0 was handed out and stays; slice 1 was in flight and is read again.
    assert stack.reads == [0, 1, 1, 2]
    slices = [item for item in items if isinstance(item, SlicePrediction)]
    assert [s.index for s in slices] == [0, 1, 2]
    np.testing.assert_allclose(
        np.stack([s.probabilities for s in slices], axis=1), reference.probabilities, atol=1e-6
    )
    np.testing.assert_array_equal(np.stack([s.labels for s in slices]), reference.labels)
    # 2 windows per slice, then 3 x 5: the 3 tiles run stay counted, the 2 slices left are
    # redone in full, and progress never goes back.
    progress = [item for item in items if isinstance(item, Progress)]
    assert progress[:3] == [Progress(1, 6), Progress(2, 6), Progress(3, 6)]
    assert [p.done for p in progress[3:]] == list(range(4, 34))
    assert {p.total for p in progress[3:]} == {33}


def test_when_nothing_can_shrink_a_clear_error_is_raised():
    model = failing(long_sighted_model(), lambda _call, x: max(x.shape[-2:]) > 50)
    with pytest.warns(RuntimeWarning) as record, pytest.raises(DeviceMemoryError) as error:
        predict(
            random_stack((150, 200)), model, device="cpu", tile_size=96, halo=HALO, batch_size=4
        )
    assert messages(record) == [
        "out of GPU memory with 4 tiles of 96 px per batch; retrying with 2",
        "out of GPU memory with 2 tiles of 96 px per batch; retrying with 1",
        # 68 px is the least halo 32 allows (2 x 32 plus the size multiple 4).
        "out of GPU memory with 1 tile of 96 px per batch; retrying with tiles of 68 px",
    ]
    assert str(error.value) == (
        "out of GPU memory even with 1 tile of 68 px per batch, the smallest that halo 32 px "
        "allows: run on the CPU (--device cpu) or use a smaller halo and tile size"
    )


def test_other_runtime_errors_are_not_taken_for_out_of_memory():
    message = "CUDA error: an illegal memory access was encountered"
    model = failing(
        long_sighted_model(), lambda _call, _x: True, error=RuntimeError, message=message
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="illegal memory access"):
            predict(random_stack((150, 200)), model, device="cpu", tile_size=96, halo=HALO)
    assert len(model.network.input_shapes) == 1

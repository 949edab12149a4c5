import warnings

import numpy as np
import pytest
import torch

from napari_unet_loop.core.errors import Cancelled, DeviceUnavailableError, InputError
from napari_unet_loop.core.inference.predict import (
    ImageLayout,
    Progress,
    SlicePrediction,
    image_layout,
    iter_predict,
    predict,
    prepare_slice,
)
from napari_unet_loop.core.model.modelfile import Model, new_model
from napari_unet_loop.core.model.normalize import Normalization
from napari_unet_loop.core.model.unet import UNetConfig


def tiny_model(in_channels: int = 1, depth: int = 2, classes: int = 3) -> Model:
    names = ["background", *(f"class{i}" for i in range(1, classes))]
    return new_model(names, in_channels=in_channels, depth=depth, base_channels=4, seed=0)


def long_sighted(model: Model) -> Model:
    """Re-initialise the convolutions variance-preserving (He, seeded).

    PyTorch's default init fades the deep features, so a fresh net barely looks beyond a few
    pixels and hides tiling errors; with He init it uses its whole receptive field, as a
    trained net does.
    """
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.network.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                fan_in = module.weight[0].numel()
                noise = torch.randn(module.weight.shape, generator=generator)
                module.weight.copy_(noise * (2 / fan_in) ** 0.5)
    return model


def smooth_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=shape)
    for axis in (-1, -2):
        noise = (noise + np.roll(noise, 1, axis) + np.roll(noise, 2, axis)) / 3
    return noise.astype(np.float32)


def whole_slice_probabilities(model: Model, image: np.ndarray, rgb: bool = False) -> np.ndarray:
    """The reference: the untiled network on one whole normalised slice."""
    x = torch.from_numpy(prepare_slice(image, model, rgb))[None]
    with torch.inference_mode():
        return torch.softmax(model.network.eval()(x), dim=1)[0].numpy()


def record_forward_inputs(model: Model) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    model.network.register_forward_hook(lambda _m, args, _out: shapes.append(tuple(args[0].shape)))
    return shapes


class PointwiseNet(torch.nn.Module):
    """A fake network whose logits at a pixel depend on that pixel only: stitching must be exact."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.config = UNetConfig(num_classes=2, depth=depth)
        self.input_shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.input_shapes.append(tuple(x.shape))
        return torch.cat([4 * x, -4 * x], dim=1)


class RecordingStack:
    """A lazily read stack that notes which slices are read and how many are held at once."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.shape, self.ndim, self.dtype = data.shape, data.ndim, data.dtype
        self.reads: list[int] = []
        self.released = 0
        self.most_held = 0

    def __getitem__(self, index: int) -> np.ndarray:
        self.reads.append(index)
        self.most_held = max(self.most_held, index + 1 - self.released)
        return self.data[index].copy()


@pytest.mark.parametrize(
    ("shape", "rgb", "in_channels", "probability_shape"),
    [
        ((40, 50), None, 1, (3, 40, 50)),
        ((2, 40, 50), None, 1, (3, 2, 40, 50)),
        ((40, 50, 3), None, 1, (3, 40, 50)),
        ((40, 50, 3), None, 3, (3, 40, 50)),
        ((40, 50, 4), None, 3, (3, 40, 50)),
        ((2, 40, 50, 3), None, 3, (3, 2, 40, 50)),
        ((40, 50), None, 3, (3, 40, 50)),
        ((4, 40, 3), False, 1, (3, 4, 40, 3)),
    ],
)
def test_layouts_give_probabilities_and_labels_of_the_right_shape(
    shape, rgb, in_channels, probability_shape
):
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    result = predict(image, tiny_model(in_channels), device="cpu", tile_size=32, halo=4, rgb=rgb)
    assert result.probabilities.shape == probability_shape
    assert result.probabilities.dtype == np.float32
    assert result.labels.shape == probability_shape[1:]
    assert result.labels.dtype == np.uint8
    np.testing.assert_allclose(result.probabilities.sum(axis=0), 1, atol=1e-5)
    np.testing.assert_array_equal(result.labels, result.probabilities.argmax(axis=0))


def test_grey_model_sees_rgb_as_the_mean_of_the_channels():
    rgb = np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    model = tiny_model()
    from_rgb = predict(rgb, model, device="cpu")
    from_grey = predict(rgb.astype(np.float32).mean(axis=-1), model, device="cpu")
    np.testing.assert_allclose(from_rgb.probabilities, from_grey.probabilities, atol=1e-6)


def test_colour_model_drops_alpha_and_sees_grey_replicated():
    rng = np.random.default_rng(2)
    model = tiny_model(in_channels=3)
    rgba = rng.integers(0, 255, (40, 50, 4), dtype=np.uint8)
    np.testing.assert_array_equal(
        predict(rgba, model, device="cpu").probabilities,
        predict(rgba[..., :3], model, device="cpu").probabilities,
    )
    grey = rng.integers(0, 255, (40, 50), dtype=np.uint8)
    np.testing.assert_allclose(
        predict(grey, model, device="cpu").probabilities,
        predict(np.repeat(grey[..., None], 3, axis=-1), model, device="cpu").probabilities,
        atol=1e-6,
    )


def test_read_only_input_is_not_touched():
    model = tiny_model()
    model.normalization = Normalization(mode="none")
    image = smooth_image((40, 50))
    image.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = predict(image, model, device="cpu")
    np.testing.assert_allclose(
        result.probabilities, whole_slice_probabilities(model, image), atol=1e-6
    )


def test_each_slice_is_normalised_on_its_own():
    model = tiny_model()
    base = smooth_image((40, 50))
    stack = np.stack([base, base * 10 + 5])
    result = predict(stack, model, device="cpu", tile_size=32, halo=4)
    np.testing.assert_allclose(result.probabilities[:, 0], result.probabilities[:, 1], atol=1e-5)


@pytest.mark.parametrize("shape", [(200, 300), (173, 251)])
def test_tiled_prediction_matches_whole_image_prediction(shape):
    # A depth-3 net sees at most 45 px past a window edge; halo 64 gives 0 weight over 48 px.
    model = long_sighted(tiny_model(depth=3))
    image = smooth_image(shape)
    whole = whole_slice_probabilities(model, image)
    calls = record_forward_inputs(model)
    result = predict(image[None], model, device="cpu", tile_size=160, halo=64, batch_size=4)
    assert sum(c[0] for c in calls) > 4 and all(c[-2:] == (160, 160) for c in calls)
    assert np.abs(result.probabilities[:, 0] - whole).max() < 1e-4


def test_default_tiling_keeps_a_depth_4_net_within_tolerance():
    model = long_sighted(tiny_model(depth=4))
    image = smooth_image((540, 600))
    whole = whole_slice_probabilities(model, image)
    calls = record_forward_inputs(model)
    result = predict(image, model, device="cpu")
    assert [c[0] for c in calls] == [1, 1, 1, 1]  # 2×2 windows, one per forward on the CPU
    assert np.abs(result.probabilities - whole).max() < 1e-3


def test_the_cpu_runs_channels_last_and_the_result_does_not_change():
    model = long_sighted(tiny_model(depth=3))
    image = smooth_image((100, 120))
    whole = whole_slice_probabilities(model, image)
    calls = []
    model.network.register_forward_pre_hook(
        lambda _, args: calls.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    result = predict(image, model, device="cpu")
    assert calls == [True]
    assert np.abs(result.probabilities - whole).max() < 1e-5


def test_a_halo_short_of_the_receptive_field_shows_seams():
    # Guards the tests above: with these nets, missing context is visible well above 1e-3.
    model = long_sighted(tiny_model(depth=3))
    image = smooth_image((200, 300))
    whole = whole_slice_probabilities(model, image)
    for halo in (0, 32):
        result = predict(image, model, device="cpu", tile_size=160, halo=halo)
        assert np.abs(result.probabilities - whole).max() > 1e-2


@pytest.mark.parametrize("shape", [(5, 7), (20, 30), (33, 17)])
def test_images_smaller_than_a_tile_are_padded_not_refused(shape):
    model = long_sighted(tiny_model(depth=3))
    image = smooth_image(shape)
    result = predict(image, model, device="cpu", tile_size=64, halo=16)
    assert result.labels.shape == shape
    np.testing.assert_allclose(
        result.probabilities, whole_slice_probabilities(model, image), atol=1e-5
    )


def test_stitching_is_exact_for_a_pointwise_network():
    network = PointwiseNet(depth=3)
    model = Model(network, ["a", "b"])
    image = smooth_image((3, 61, 97))
    result = predict(image, model, device="cpu", tile_size=32, halo=8, batch_size=5)
    for z in range(3):
        x = model.normalization(image[z])
        expected = 1 / (1 + np.exp(-8 * x))
        np.testing.assert_allclose(result.probabilities[0, z], expected, atol=1e-6)
    assert all(s[-2:] == (32, 32) for s in network.input_shapes)
    # Padded to 64 x 104: 3 x 6 windows of 32 with stride 16, the last ones shifted inward.
    assert sum(s[0] for s in network.input_shapes) == 3 * 3 * 6


def test_tiles_of_several_slices_share_a_batch():
    model = tiny_model()
    stack = smooth_image((3, 40, 40))
    calls = record_forward_inputs(model)
    batched = predict(stack, model, device="cpu", tile_size=64, halo=8, batch_size=4)
    assert [c[0] for c in calls] == [3]
    for z, image in enumerate(stack):
        single = predict(image, model, device="cpu", tile_size=64, halo=8, batch_size=1)
        np.testing.assert_allclose(batched.probabilities[:, z], single.probabilities, atol=1e-5)
        np.testing.assert_array_equal(batched.labels[z], single.labels)


@pytest.mark.parametrize(
    ("shape", "batch_size", "most_held"), [((8, 24, 24), 2, 2), ((6, 40, 40), 3, 2)]
)
def test_slices_are_read_lazily_and_released_in_order(shape, batch_size, most_held):
    stack = RecordingStack(smooth_image(shape))
    items = iter_predict(
        stack, tiny_model(), device="cpu", tile_size=32, halo=4, batch_size=batch_size
    )
    assert stack.reads == []
    indices = []
    for item in items:
        if isinstance(item, SlicePrediction):
            indices.append(item.index)
            stack.released += 1
    assert indices == list(range(shape[0]))
    assert stack.reads == list(range(shape[0]))
    assert stack.most_held <= most_held


def test_progress_counts_tiles_and_probabilities_can_be_skipped():
    stack = smooth_image((3, 40, 40))
    model = tiny_model()
    items = list(
        iter_predict(
            stack, model, device="cpu", tile_size=32, halo=4, batch_size=3, keep_probabilities=False
        )
    )
    progress = [item for item in items if isinstance(item, Progress)]
    slices = [item for item in items if isinstance(item, SlicePrediction)]
    assert progress[-1] == Progress(12, 12)
    assert [p.done for p in progress] == [3, 6, 9, 12]
    assert all(s.probabilities is None for s in slices)
    full = predict(stack, model, device="cpu", tile_size=32, halo=4)
    np.testing.assert_array_equal(np.stack([s.labels for s in slices]), full.labels)
    seen = []
    predict(
        stack,
        model,
        device="cpu",
        tile_size=32,
        halo=4,
        batch_size=5,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(5, 12), (10, 12), (12, 12)]


def test_closing_the_generator_stops_the_work():
    model = tiny_model()
    calls = record_forward_inputs(model)
    items = iter_predict(
        smooth_image((6, 40, 40)), model, device="cpu", tile_size=32, halo=4, batch_size=1
    )
    for _ in range(3):
        next(items)
    items.close()
    assert len(calls) == 3
    assert next(items, None) is None
    assert len(calls) == 3


def test_should_stop_cancels_between_batches():
    model = tiny_model()
    calls = record_forward_inputs(model)
    with pytest.raises(Cancelled):
        predict(
            smooth_image((6, 40, 40)),
            model,
            device="cpu",
            tile_size=32,
            halo=4,
            batch_size=2,
            should_stop=lambda: len(calls) >= 2,
        )
    assert len(calls) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_unavailable_device_is_an_error():
    with pytest.raises(DeviceUnavailableError):
        predict(smooth_image((40, 40)), tiny_model(), device="cuda")


@pytest.mark.parametrize(
    ("shape", "rgb"),
    [
        ((100,), None),
        ((2, 2, 20, 20, 3), None),
        ((2, 3, 40, 50), None),
        ((40, 50), True),
        ((2, 40, 50, 3), False),
        ((0, 40), None),
    ],
)
def test_unusable_shapes_are_input_errors(shape, rgb):
    with pytest.raises(InputError, match="shape"):
        predict(np.zeros(shape, dtype=np.uint8), tiny_model(), device="cpu", rgb=rgb)


def test_bad_options_are_input_errors():
    image, model = smooth_image((40, 40)), tiny_model()
    with pytest.raises(InputError, match="batch size"):
        predict(image, model, device="cpu", batch_size=0)
    with pytest.raises(InputError, match="tile size"):
        predict(image, model, device="cpu", tile_size=32, halo=16)
    with pytest.raises(InputError, match="type"):
        predict(np.zeros((8, 8), dtype=object), model, device="cpu")


def test_layout_detection():
    assert image_layout((5, 40, 3)).rgb
    assert image_layout((5, 40, 3), rgb=False) == ImageLayout(5, True, False, (40, 3))
    assert image_layout((7, 40, 50)).num_slices == 7
    assert image_layout((40, 50, 4)).slice_shape == (40, 50)

import itertools
import logging
import re

import numpy as np
import pytest
import torch

from napari_unet_loop.core.errors import DeviceUnavailableError, InputError
from napari_unet_loop.core.model.modelfile import new_model
from napari_unet_loop.core.synthetic import make_membrane_stack
from napari_unet_loop.core.training import train as training
from napari_unet_loop.core.training.train import (
    IGNORE_INDEX,
    TrainConfig,
    finish_early,
    learning_rate_at,
    run_to_end,
    train,
)

TINY = TrainConfig(iterations=6, patch_size=32, batch_size=2, val_every=2, device="cpu")


@pytest.fixture(scope="module")
def data():
    image, labels = make_membrane_stack((3, 48, 48), seed=1)
    return image, labels


def tiny_model():
    return new_model(["interior", "membrane"], depth=2, base_channels=4)


def state(model):
    return {k: v.clone() for k, v in model.network.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def losses(updates):
    return [u.loss for u in updates]


def test_updates_every_iteration_and_final_model(data):
    image, labels = data
    updates = list(
        train(
            tiny_model(),
            image[:2],
            labels[:2],
            config=TINY,
            val_images=image[2:],
            val_labels=labels[2:],
        )
    )
    assert [u.iteration for u in updates] == list(range(1, 7))
    assert all(u.total == 6 for u in updates)
    assert [u.done for u in updates] == [False] * 5 + [True]
    assert all(u.model is None for u in updates[:-1])
    assert [u.val_dice is not None for u in updates] == [False, True] * 3
    assert all(0.0 <= u.val_dice <= 1.0 for u in updates if u.val_dice is not None)
    assert all(np.isfinite(u.loss) for u in updates)
    final = updates[-1].model
    assert not final.network.training
    assert all(p.device.type == "cpu" for p in final.network.parameters())
    (entry,) = final.provenance["training"]
    assert entry["iterations"] == 6 and entry["images"] == 2
    assert entry["config"]["patch_size"] == 32
    assert entry["best_val_dice"] == max(u.val_dice for u in updates if u.val_dice is not None)


def test_input_model_is_untouched(data):
    image, labels = data
    model = tiny_model()
    model.provenance["training"] = [{"iterations": 1}]
    before = state(model)
    new = run_to_end(train(model, image, labels, config=TINY))
    assert same_state(state(model), before)
    assert model.provenance == {"training": [{"iterations": 1}]}
    assert len(new.provenance["training"]) == 2
    assert not same_state(state(new), before)


def test_same_seed_gives_same_losses(data):
    image, labels = data
    config = TrainConfig(iterations=4, patch_size=32, batch_size=2, device="cpu", seed=3)
    first = losses(train(tiny_model(), image, labels, config=config))
    torch.manual_seed(123)  # the caller's global RNG state must not matter
    second = losses(train(tiny_model(), image, labels, config=config))
    other = TrainConfig(iterations=4, patch_size=32, batch_size=2, device="cpu", seed=4)
    third = losses(train(tiny_model(), image, labels, config=other))
    assert first == second
    assert first != third


def test_any_integer_label_dtype_is_accepted(data):
    image, labels = data
    config = TrainConfig(iterations=2, patch_size=32, batch_size=2, device="cpu")
    results = [
        losses(train(tiny_model(), image[0], labels[0].astype(dtype), config=config))
        for dtype in (np.uint8, np.int16, np.int64, bool)
    ]
    assert all(r == results[0] for r in results)


def test_a_few_labelled_strokes_are_enough(data):
    image, labels = data
    sparse = np.full(labels.shape, IGNORE_INDEX, np.int16)
    sparse[:, 10:13, 5:40] = labels[:, 10:13, 5:40]
    config = TrainConfig(iterations=5, patch_size=32, batch_size=2, device="cpu")
    # Patches are centred on labelled pixels, so no batch comes out empty (an empty one has loss 0).
    assert all(loss > 0 for loss in losses(train(tiny_model(), image, sparse, config=config)))


def test_stopping_at_a_yield_changes_nothing(data):
    image, labels = data
    model = tiny_model()
    before = state(model)
    updates = train(model, image, labels, config=TINY)
    taken = list(itertools.islice(updates, 2))
    updates.close()
    assert [u.iteration for u in taken] == [1, 2]
    assert next(updates, None) is None
    assert same_state(state(model), before)


def test_finish_early_returns_the_model_so_far(data):
    image, labels = data
    updates = train(
        tiny_model(), image, labels, config=TINY, val_images=image[:1], val_labels=labels[:1]
    )
    for update in updates:
        if update.iteration == 3:
            final = finish_early(updates)
    assert final.done and final.iteration == 3 and not final.stopped_early
    assert final.val_dice is not None  # validated before finishing, to keep the best weights
    assert final.model.provenance["training"][-1]["iterations"] == 3
    fresh = train(tiny_model(), image, labels, config=TINY)
    assert finish_early(fresh).iteration == 1


def test_early_stopping_keeps_the_best_weights(data, monkeypatch):
    image, labels = data
    scores = iter([0.5, 0.6, 0.55, 0.4, 0.3, 0.2])
    monkeypatch.setattr(training, "_validation_dice", lambda *args: next(scores))
    config = TrainConfig(
        iterations=20, patch_size=32, batch_size=2, val_every=1, patience=2, device="cpu"
    )
    updates = list(
        train(
            tiny_model(), image, labels, config=config, val_images=image[:1], val_labels=labels[:1]
        )
    )
    final = updates[-1]
    assert final.done and final.stopped_early and final.iteration == 4
    assert final.model.provenance["training"][-1]["best_val_dice"] == 0.6
    # The best check was after iteration 2: a 2-iteration run ends with the same weights.
    shorter = TrainConfig(iterations=2, patch_size=32, batch_size=2, device="cpu")
    reference = run_to_end(train(tiny_model(), image, labels, config=shorter))
    assert same_state(state(final.model), state(reference))


def test_pixels_to_keep_join_the_choice_of_weights_not_the_reported_dice(data, monkeypatch):
    image, labels = data
    # Scores alternate: the validation pairs, then the pixels to keep, at each check.
    scores = iter([0.5, 0.9, 0.7, 0.3, 0.6, 0.6, 0.4, 0.4])
    monkeypatch.setattr(training, "_validation_dice", lambda *args: next(scores))
    config = TrainConfig(
        iterations=20, patch_size=32, batch_size=2, val_every=1, patience=2, device="cpu"
    )
    updates = list(
        train(
            tiny_model(),
            image,
            labels,
            config=config,
            val_images=image[:1],
            val_labels=labels[:1],
            keep_images=image[1:2],
            keep_labels=labels[1:2],
        )
    )
    final = updates[-1]
    # Means 0.7, 0.5, 0.6: the first check's weights win although the second validated
    # higher, and two checks without a gain stop the run; updates report the validation Dice.
    assert [u.val_dice for u in updates] == [0.5, 0.7, 0.6]
    assert final.stopped_early and final.model.provenance["training"][-1]["best_val_dice"] == 0.5
    one = TrainConfig(iterations=1, patch_size=32, batch_size=2, device="cpu")
    assert same_state(
        state(final.model), state(run_to_end(train(tiny_model(), image, labels, config=one)))
    )


def test_pixels_to_keep_need_labels_and_validation_pairs(data):
    image, labels = data
    with pytest.raises(InputError, match="pixels to keep"):
        train(tiny_model(), image, labels, keep_images=image[:1], keep_labels=labels[:1])
    with pytest.raises(InputError, match="pixels to keep"):
        train(tiny_model(), image, labels, val_images=image, val_labels=labels, keep_images=image)


def test_out_of_memory_halves_the_batch(data, monkeypatch, caplog):
    image, labels = data
    real_step = training._train_step

    def step_with_small_memory(network, optimizer, scaler, images, *args):
        if len(images) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_step(network, optimizer, scaler, images, *args)

    monkeypatch.setattr(training, "_train_step", step_with_small_memory)
    config = TrainConfig(iterations=3, patch_size=32, batch_size=4, device="cpu")
    with caplog.at_level(logging.WARNING):
        model = run_to_end(train(tiny_model(), image, labels, config=config))
    assert model.provenance["training"][-1]["batch_size_used"] == 1
    assert model.provenance["training"][-1]["iterations"] == 3
    assert "batch size 2" in caplog.text

    def always_out_of_memory(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(training, "_train_step", always_out_of_memory)
    with pytest.raises(DeviceUnavailableError):
        run_to_end(train(tiny_model(), image, labels, config=config))


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.zeros((48, 48)), np.zeros((40, 48), np.uint8), "48x48 but its labels are 40x48"),
        (np.zeros((48, 48)), np.full((48, 48), IGNORE_INDEX), "no labelled pixels"),
        (np.zeros((48, 48)), np.full((48, 48), 2), "label value 2"),
        (np.zeros((48, 48)), np.full((48, 48), -3), "label value -3"),
        (np.zeros((48, 48)), np.zeros((48, 48), np.float32), "integer"),
        (np.zeros((48, 48, 2)), np.zeros((48, 48), np.uint8), "(Y, X) images"),
        ([np.zeros((48, 48))] * 2, [np.zeros((48, 48), int)], "2 images but 1 label"),
    ],
)
def test_bad_inputs_raise_input_error_at_once(images, labels, message):
    with pytest.raises(InputError, match=re.escape(message)):
        train(tiny_model(), images, labels, config=TINY)


def test_bad_validation_and_config_raise_input_error(data):
    image, labels = data
    with pytest.raises(InputError, match="both"):
        train(tiny_model(), image, labels, val_images=image)
    with pytest.raises(InputError, match="validation image 0"):
        train(tiny_model(), image, labels, val_images=image[:1], val_labels=labels[:1, :10])
    with pytest.raises(InputError, match="iterations"):
        TrainConfig(iterations=0)
    with pytest.raises(InputError, match="patience"):
        TrainConfig(patience=0)
    with pytest.raises(InputError, match="schedule 'linear'"):
        TrainConfig(schedule="linear")
    with pytest.raises(InputError, match="elastic"):
        TrainConfig(elastic=-1.0)


def test_cosine_schedule_decays_to_zero_and_constant_stays():
    cosine = TrainConfig(iterations=100, learning_rate=1e-3, schedule="cosine")
    rates = [learning_rate_at(cosine, i) for i in range(101)]
    assert rates[0] == pytest.approx(1e-3) and rates[50] == pytest.approx(5e-4)
    assert rates[100] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in itertools.pairwise(rates))
    constant = TrainConfig(iterations=100, learning_rate=1e-3)
    assert {learning_rate_at(constant, i) for i in range(100)} == {1e-3}


def test_cosine_schedule_and_elastic_run_and_are_recorded(data):
    image, labels = data
    config = TrainConfig(
        iterations=3, patch_size=32, batch_size=2, device="cpu", schedule="cosine", elastic=4.0
    )
    model = run_to_end(train(tiny_model(), image[:2], labels[:2], config=config))
    (entry,) = model.provenance["training"]
    assert entry["config"]["schedule"] == "cosine" and entry["config"]["elastic"] == 4.0


def membrane_dice(model, image, label):
    x = torch.from_numpy(model.normalization(image))[None, None]
    with torch.inference_mode():
        predicted = model.network.eval()(x).argmax(1)[0].numpy()
    overlap = ((predicted == 1) & (label == 1)).sum()
    return 2 * overlap / ((predicted == 1).sum() + (label == 1).sum())


@pytest.mark.slow
def test_unet_learns_synthetic_membranes():
    image, labels = make_membrane_stack((3, 160, 160), seed=7)
    model = new_model(["interior", "membrane"], depth=3, base_channels=8)
    untrained = membrane_dice(model, image[2], labels[2])
    config = TrainConfig(
        iterations=150, patch_size=64, batch_size=4, learning_rate=3e-3, device="cpu"
    )
    trained = run_to_end(train(model, image[:2], labels[:2], config=config))
    dice = membrane_dice(trained, image[2], labels[2])
    assert untrained < 0.4
    assert dice > 0.8


def test_frozen_batchnorm_keeps_running_statistics():
    from napari_unet_loop.core.model.modelfile import new_model
    from napari_unet_loop.core.synthetic import make_membrane_stack
    from napari_unet_loop.core.training.train import TrainConfig, run_to_end, train

    image, labels = make_membrane_stack((1, 64, 64), seed=2)
    model = new_model(["interior", "membrane"], depth=2, base_channels=4)
    before = {k: v.clone() for k, v in model.network.state_dict().items() if "running" in k}
    trained_before = model.copy()
    trained_before.provenance["training"] = [{"iterations": 1}]
    cases = [
        (model, True, True),
        (model, False, False),
        (model, None, False),
        (trained_before, None, True),
    ]
    for start, freeze, expect_unchanged in cases:
        config = TrainConfig(iterations=3, patch_size=32, batch_size=2, freeze_batchnorm=freeze)
        tuned = run_to_end(train(start, [image[0]], [labels[0]], config=config))
        after = tuned.network.state_dict()
        unchanged = all(torch.equal(after[k], v) for k, v in before.items())
        assert unchanged is expect_unchanged, (freeze, start is model)


def test_colour_trains_a_grey_model_and_grey_a_colour_model_as_segment_converts_them(data):
    image, labels = data
    rgb = np.repeat(image[0][..., None], 3, axis=-1)
    config = TrainConfig(iterations=1, patch_size=32, batch_size=1, device="cpu")
    run_to_end(train(tiny_model(), [rgb], [labels[0]], config=config))
    colour = new_model(["interior", "membrane"], in_channels=3, depth=2, base_channels=4)
    run_to_end(train(colour, [image[0]], [labels[0]], config=config))


def test_a_new_network_records_its_background_and_a_trained_one_keeps_its_own():
    rng = np.random.default_rng(0)
    dark = rng.normal(20, 3, (2, 48, 48)).astype(np.float32)
    labels = np.zeros((2, 48, 48), np.int16)
    labels[:, 10:20, 10:20] = 1
    dark[labels == 1] += 150
    first = run_to_end(train(tiny_model(), dark, labels, config=TINY))
    assert first.normalization.background == "dark"
    bright = run_to_end(train(first, 255 - dark, labels, config=TINY))
    assert bright.normalization.background == "dark"  # it inverts them, as Segment does
    assert first.normalization.inverts(255 - dark[0])


def test_a_new_network_records_the_scale_it_learns_at_and_a_trained_one_keeps_its_own():
    rng = np.random.default_rng(1)
    images = rng.normal(20, 3, (2, 64, 64)).astype(np.float32)
    labels = np.zeros((2, 64, 64), np.int16)
    labels[:, 10:22, 10:22] = labels[:, 40:52, 30:42] = 1
    images[labels == 1] += 150
    first = run_to_end(train(tiny_model(), images, labels, config=TINY))
    record = first.provenance["scale"]
    assert set(record) == {"image_scale", "image_peak", "object_diameter"}
    assert record["object_diameter"] == pytest.approx(2 * np.sqrt(144 / np.pi), abs=0.01)
    again = run_to_end(train(first, images[:, ::2, ::2], labels[:, ::2, ::2], config=TINY))
    assert again.provenance["scale"] == record

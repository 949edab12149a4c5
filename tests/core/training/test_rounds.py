import numpy as np
import pytest
import torch

from napari_unet_loop.core.errors import InputError
from napari_unet_loop.core.model.modelfile import new_model
from napari_unet_loop.core.synthetic import make_membrane_stack
from napari_unet_loop.core.training import rounds
from napari_unet_loop.core.training.rounds import (
    DEFAULT_ROUND,
    RoundResult,
    RoundSettings,
    correction_round,
    hold_back,
    iteration_budget,
    reestimate_batchnorm,
    replay_targets,
    run_round,
)
from napari_unet_loop.core.training.train import (
    IGNORE_INDEX,
    TrainConfig,
    TrainUpdate,
    run_to_end,
    train,
)

FAST = RoundSettings(
    patch_size=32, batch_size=2, min_iterations=4, max_iterations=6, check_every=2, device="cpu"
)


@pytest.fixture(scope="module")
def data():
    return make_membrane_stack((4, 64, 64), seed=3)


def tiny_model(channels: int = 1):
    return new_model(["interior", "membrane"], in_channels=channels, depth=2, base_channels=4)


@pytest.fixture(scope="module")
def trained(data):
    image, labels = data
    config = TrainConfig(iterations=4, patch_size=32, batch_size=2, device="cpu")
    return run_to_end(train(tiny_model(), image[:2], labels[:2], config=config))


def test_the_default_round_is_short():
    assert DEFAULT_ROUND.max_iterations <= 100
    assert DEFAULT_ROUND.patch_size * DEFAULT_ROUND.batch_size <= 4 * 128


def test_budget_grows_with_the_corrected_area_up_to_the_cap():
    settings = RoundSettings(
        patch_size=32, min_iterations=10, iterations_per_patch=2, max_iterations=30
    )
    small = np.full((32, 32), IGNORE_INDEX, np.int16)
    small[:16] = 1
    assert iteration_budget([small], settings) == 11
    assert iteration_budget([np.ones((64, 64), np.int16)], settings) == 18
    assert iteration_budget([np.ones((512, 512), np.int16)], settings) == 30


def test_hold_back_takes_a_band_holding_every_class_out_of_training(data):
    image, labels = data
    targets = [labels[0].astype(np.int16)]
    train_targets, held_images, held_labels = hold_back([image[0]], targets, 2)
    assert len(held_images) == len(held_labels) == 1
    held = held_labels[0] != IGNORE_INDEX
    assert {0, 1} <= set(np.unique(held_labels[0][held]))
    assert held.sum() == pytest.approx(0.2 * labels[0].size, rel=0.1)
    # the held-back rows are unlabelled for training, the rest untouched
    removed = (train_targets[0] == IGNORE_INDEX).sum()
    assert removed == held.sum()
    assert held_images[0].shape == held_labels[0].shape


def test_hold_back_skips_slices_that_would_lose_a_class():
    labels = np.zeros((40, 40), np.int16)
    labels[0, 0] = 1  # one pixel of class 1: no band can hold it back and keep it for training
    train_targets, held_images, _ = hold_back([np.zeros((40, 40))], [labels], 2)
    assert held_images == []
    assert np.array_equal(train_targets[0], labels)


def test_a_round_yields_progress_then_its_result(data, trained):
    image, labels = data
    items = list(
        correction_round(trained, [image[2]], [labels[2]], context=[image[3]], settings=FAST)
    )
    assert all(isinstance(i, TrainUpdate) for i in items[:-1])
    result = items[-1]
    assert isinstance(result, RoundResult)
    assert result.before is not None and result.after is not None
    margin = FAST.margin + FAST.trusted_margin * result.trust
    assert result.adopted == (result.after >= result.before + margin)
    assert result.model.provenance["training"][-1]["round"]["adopted"] == result.adopted
    assert "held-back" in result.message


def test_the_guard_keeps_the_previous_model_when_a_round_scores_worse(data, trained, monkeypatch):
    image, labels = data
    scores = iter([0.9, 0.5, 0.6, 0.5, 0.5])  # before, then every later check: worse

    def fake_dice(model, images, targets, device="auto"):
        return next(scores, 0.5)

    monkeypatch.setattr(rounds, "labelled_dice", fake_dice)
    settings = RoundSettings(**{**FAST.__dict__, "batchnorm": "keep", "replay": 0.0})
    result = run_round(correction_round(trained, [image[2]], [labels[2]], settings=settings))
    assert not result.adopted
    assert result.model is not trained
    assert "kept the previous model" in result.message
    assert "0.500 on held-back corrections vs 0.900 before" in result.message


def test_a_trusted_model_needs_a_clear_gain_and_the_message_says_how_much(
    data, trained, monkeypatch
):
    image, labels = data
    scores = iter([0.9, 0.94])  # before, then every later check: 0.04 better

    def fake_dice(model, images, targets, device="auto"):
        return next(scores, 0.94)

    monkeypatch.setattr(rounds, "labelled_dice", fake_dice)
    monkeypatch.setattr(rounds, "sure_precision", lambda *args, **kwargs: 1.0)
    settings = RoundSettings(**{**FAST.__dict__, "batchnorm": "keep", "replay": 0.0})
    result = run_round(correction_round(trained, [image[2]], [labels[2]], settings=settings))
    assert result.trust == 1.0 and not result.adopted  # 0.04 is less than 0.01 + 0.06
    assert "0.940 on held-back corrections vs 0.900 before, short of the 0.970 needed" in (
        result.message
    )
    message = rounds._message(False, 0.96, 0.98, 10, 3.0, margin=0.07)
    assert message.endswith("too close to perfect on them to replace: kept the previous model")


def test_the_guard_keeps_the_previous_model_when_one_corrected_image_scores_worse(
    data, trained, monkeypatch
):
    image, labels = data
    each = {True: iter([0.7, 0.7]), False: iter([0.95, 0.65])}  # per image: before, after

    def fake_dice(model, images, targets, device="auto"):
        if len(images) > 1:  # pooled over both images: a clear gain
            return 0.7 if model is trained else 0.9
        return next(each[model is trained])

    monkeypatch.setattr(rounds, "labelled_dice", fake_dice)
    settings = RoundSettings(**{**FAST.__dict__, "batchnorm": "keep", "replay": 0.0})
    result = run_round(
        correction_round(trained, [image[2], image[3]], [labels[2], labels[3]], settings=settings)
    )
    assert (result.before, result.after) == (0.7, 0.9)
    assert result.before_each == (0.7, 0.7) and result.after_each == (0.95, 0.65)
    assert not result.adopted
    assert "lower on one corrected image (0.650 vs 0.700)" in result.message
    assert "kept the previous model" in result.message


def test_replay_share_follows_how_well_the_model_did_on_the_corrections(data, trained, monkeypatch):
    image, labels = data
    monkeypatch.setattr(rounds, "share_gap", lambda *args: 0.5)  # unlike the corrections' mix
    shares = {}
    for quality in (0.3, 0.9):
        monkeypatch.setattr(rounds, "labelled_dice", lambda *a, q=quality, **k: q)
        result = run_round(
            correction_round(trained, [image[2]], [labels[2]], context=[image[3]], settings=FAST)
        )
        shares[quality] = result.replay_share
    assert shares[0.3] == 0.0
    assert shares[0.9] == pytest.approx(FAST.replay)


def test_replay_targets_keep_only_confident_pixels(data, trained):
    image, _ = data
    (target,) = replay_targets(trained, [image[3]], confidence=0.0)
    assert (target != IGNORE_INDEX).all()
    (target,) = replay_targets(trained, [image[3]], confidence=1.01)
    assert (target == IGNORE_INDEX).all()


def test_reestimated_batch_norm_follows_the_image_and_keeps_the_weights(data, trained):
    image, _ = data
    adapted = reestimate_batchnorm(trained, [image[3] * 0.2 + 100])
    before, after = trained.network.state_dict(), adapted.network.state_dict()
    means = [k for k in before if k.endswith("running_mean")]
    weights = [k for k in before if k.endswith(".weight")]
    assert any(not torch.equal(before[k], after[k]) for k in means)
    assert all(torch.equal(before[k], after[k]) for k in weights)
    assert not adapted.network.training


def test_colour_corrections_retrain_a_grey_model_and_grey_ones_a_colour_model(data):
    image, labels = data
    rgb = np.repeat(image[2][..., None], 3, axis=-1)
    for model, picture in ((tiny_model(1), rgb), (tiny_model(3), image[2])):
        result = run_round(correction_round(model, [picture], [labels[2]], settings=FAST))
        assert result.iterations > 0


def test_scribbles_train_and_use_the_unpainted_pixels_for_replay(data, trained, monkeypatch):
    image, labels = data
    strokes = np.full(labels[2].shape, IGNORE_INDEX, np.int16)
    strokes[10:14, :] = labels[2][10:14, :]
    strokes[40:44, :] = labels[2][40:44, :]
    monkeypatch.setattr(rounds, "labelled_dice", lambda *a, **k: 1.0)
    result = run_round(correction_round(trained, [image[2]], [strokes], settings=FAST))
    assert result.replay_share > 0


def test_a_round_without_labels_is_refused(data, trained):
    image, _ = data
    empty = np.full(image[0].shape, IGNORE_INDEX, np.int16)
    with pytest.raises(InputError, match="no labelled pixels"):
        next(correction_round(trained, [image[0]], [empty], settings=FAST))


def test_a_round_at_another_scale_trains_on_resized_corrections(data, trained):
    image, labels = data
    big = np.kron(image[2], np.ones((2, 2))).astype(image.dtype)
    big_labels = np.kron(labels[2], np.ones((2, 2), labels.dtype))
    result = run_round(correction_round(trained, [big], [big_labels], settings=FAST, scale=0.5))
    assert result.model.provenance["training"][-1]["labelled_pixels"] < big_labels.size


@pytest.fixture
def train_calls(monkeypatch):
    """What each round passes to training: (targets, config) per call."""
    calls = []
    real_train = rounds.training.train

    def spy(model, images, targets, *, config, **kwargs):
        calls.append((targets, config))
        return real_train(model, images, targets, config=config, **kwargs)

    monkeypatch.setattr(rounds.training, "train", spy)
    return calls


def test_each_image_trains_at_its_own_scale(data, trained, train_calls):
    image, labels = data
    big = np.kron(image[2], np.ones((2, 2))).astype(image.dtype)
    big_labels = np.kron(labels[2], np.ones((2, 2), labels.dtype))
    run_round(
        correction_round(
            trained,
            [big, image[3]],
            [big_labels, labels[3]],
            context=[big],
            context_scale=[0.5],
            settings=FAST,
            scale=[0.5, 1.0],
        )
    )
    targets, _ = train_calls[0]
    assert [t.shape for t in targets[:2]] == [(64, 64), (64, 64)]


@pytest.mark.parametrize(("held_back_dice", "planned"), [(0.3, 12), (0.95, 4)])
def test_a_trusted_model_gets_a_shorter_round(
    data, trained, train_calls, monkeypatch, held_back_dice, planned
):
    image, labels = data
    monkeypatch.setattr(rounds, "labelled_dice", lambda *a, **k: held_back_dice)
    settings = RoundSettings(
        patch_size=32,
        batch_size=2,
        min_iterations=4,
        max_iterations=6,
        iterations_per_patch=3.0,
        check_every=2,
        device="cpu",
    )
    run_round(
        correction_round(trained, [image[2], image[3]], [labels[2], labels[3]], settings=settings)
    )
    _, config = train_calls[0]
    assert config.iterations == planned


def test_a_model_wrong_on_the_corrections_tries_again_with_live_batch_norm(
    data, trained, train_calls, monkeypatch
):
    image, labels = data
    # before: 0.3 (no trust); re-estimated statistics: 0.2 (kept); first try: 0.3 (refused);
    # second try: 0.9
    scores = iter([0.3, 0.2, 0.3, 0.9])
    monkeypatch.setattr(rounds, "labelled_dice", lambda *a, **k: next(scores))
    result = run_round(correction_round(trained, [image[2]], [labels[2]], settings=FAST))
    assert [config.freeze_batchnorm for _, config in train_calls] == [True, False]
    assert result.adopted and result.batchnorm == "live" and result.after == 0.9
    first, second = (config.iterations for _, config in train_calls)
    assert result.iterations == first + second
    assert "second try with batch-norm statistics" in result.message


def test_a_trusted_model_that_gains_nothing_is_not_tried_again(
    data, trained, train_calls, monkeypatch
):
    image, labels = data
    monkeypatch.setattr(rounds, "labelled_dice", lambda *a, **k: 0.95)
    result = run_round(correction_round(trained, [image[2]], [labels[2]], settings=FAST))
    assert not result.adopted and len(train_calls) == 1


def test_scale_factors_must_match_the_images(data, trained):
    image, labels = data
    with pytest.raises(InputError, match="one scale factor per corrected image"):
        next(correction_round(trained, [image[0]], [labels[0]], settings=FAST, scale=[1, 2]))


@pytest.fixture(scope="module")
def two_kinds():
    """A model trained on one kind of slice, more of that kind, and the same structures in
    inverted contrast (a new kind of image)."""
    old, old_labels = make_membrane_stack((6, 64, 64), seed=1)
    new, new_labels = make_membrane_stack((3, 64, 64), seed=2)
    config = TrainConfig(
        iterations=80, patch_size=48, batch_size=4, learning_rate=3e-3, device="cpu"
    )
    base = run_to_end(
        train(
            new_model(["interior", "membrane"], depth=2, base_channels=8),
            old[:4],
            old_labels[:4],
            config=config,
        )
    )
    return base, (old[4:], old_labels[4:]), (255 - new, new_labels)


def _dice(model, images, labels):
    from napari_unet_loop.core.evaluation.metrics import confusion_counts
    from napari_unet_loop.core.inference.predict import predict

    return confusion_counts(predict(images, model, device="cpu").labels, labels, 2).dice()[1]


@pytest.mark.slow
def test_a_round_on_a_new_kind_learns_it_and_keeps_much_of_the_old_where_fine_tuning_forgets(
    two_kinds,
):
    base, (old, old_labels), (new, new_labels) = two_kinds
    dice = _dice
    before = dice(base, old, old_labels)
    assert before > 0.8
    assert dice(base, new[1:], new_labels[1:]) < 0.1
    # Long enough to learn the new kind: a round without replay then erased the old one.
    settings = RoundSettings(
        patch_size=48,
        batch_size=4,
        learning_rate=1e-3,
        min_iterations=60,
        max_iterations=60,
        check_every=5,
        device="cpu",
    )
    result = run_round(
        correction_round(base, [new[0]], [new_labels[0]], context=list(old), settings=settings)
    )
    assert result.adopted and result.trust == 0
    assert result.replay_share == pytest.approx(settings.replay)  # the old kind is replayed
    assert result.kept > 0.9
    assert f"keeps {result.kept:.1%} of what the previous model was sure of" in result.message
    plain = run_to_end(
        train(
            base,
            [new[0]],
            [new_labels[0]],
            config=TrainConfig(
                iterations=30, patch_size=48, batch_size=4, learning_rate=5e-4, device="cpu"
            ),
        )
    )
    # Measured: old kind 0.91 -> 0.84 and new kind 0.00 -> 0.68 (choosing the weights by the
    # band alone: 0.72 and 0.50); plain fine-tuning loses the old kind entirely.
    assert dice(result.model, old, old_labels) >= before - 0.1
    assert dice(result.model, new[1:], new_labels[1:]) > 0.5
    assert dice(plain, old, old_labels) < before - 0.3  # what the round protects against


@pytest.mark.parametrize(("gap", "share"), [(0.5, 0.0), (0.225, 0.25), (0.05, 0.5)])
def test_a_model_wrong_on_the_corrections_replays_other_slices_where_it_finds_their_mix(
    data, trained, monkeypatch, gap, share
):
    images, labels = data
    monkeypatch.setattr(rounds, "share_gap", lambda *args: gap)
    result = run_round(
        correction_round(trained, images[:1], labels[:1], context=list(images[2:]), settings=FAST)
    )
    assert result.trust == 0
    assert result.replay_share == pytest.approx(share)


def test_scribbles_say_nothing_of_the_mix_so_an_untrusted_model_replays_nothing(
    data, trained, monkeypatch
):
    images, labels = data
    monkeypatch.setattr(rounds, "share_gap", lambda *args: 0.0)
    sparse = np.full_like(labels[0], IGNORE_INDEX, dtype=np.int16)
    sparse[::4] = labels[0][::4]
    result = run_round(
        correction_round(trained, images[:1], [sparse], context=list(images[2:]), settings=FAST)
    )
    assert result.trust == 0
    assert result.replay_share == 0
    assert result.kept is None and "keeps" not in result.message


def test_the_band_leaves_most_of_a_rare_class_for_training():
    labels = np.zeros((60, 60), np.int16)
    labels[20:40, 20:40] = 1  # one object, as in a small blood-cell image
    train_targets, _, held_labels = hold_back([np.zeros((60, 60))], [labels], 2)
    (held,) = held_labels
    assert 0 < (held == 1).sum() <= rounds.MAX_HELD_SHARE * (labels == 1).sum()
    assert (train_targets[0] == 1).sum() >= 0.6 * (labels == 1).sum()


def test_sure_precision_is_the_worst_class_share_of_sure_pixels_labelled_alike(monkeypatch):
    from types import SimpleNamespace

    from napari_unet_loop.core.inference import predict as prediction

    probabilities = np.full((2, 16, 16), 0.5, np.float32)
    probabilities[1, :, :8], probabilities[0, :, :8] = 0.95, 0.05  # sure of class 1
    probabilities[0, :, 8:], probabilities[1, :, 8:] = 0.95, 0.05  # sure of class 0
    monkeypatch.setattr(
        prediction, "predict", lambda *a, **k: SimpleNamespace(probabilities=probabilities)
    )
    model, image = tiny_model(), np.zeros((16, 16), np.float32)
    agreeing = np.zeros((16, 16), np.int16)
    agreeing[:, :8] = 1
    assert rounds.sure_precision(model, [image], [agreeing]) == 1.0
    half_wrong = agreeing.copy()
    half_wrong[:8, 8:] = 1  # half of the sure class-0 pixels are labelled 1
    assert rounds.sure_precision(model, [image], [half_wrong]) == pytest.approx(0.5)
    unlabelled = np.full((16, 16), -1, np.int16)
    assert rounds.sure_precision(model, [image], [unlabelled]) == 1.0


def test_class_shares_count_labelled_pixels_only():
    from napari_unet_loop.core.training.rounds import class_shares

    labels = np.array([[0, 1, IGNORE_INDEX], [1, 1, IGNORE_INDEX]], np.int16)
    np.testing.assert_allclose(class_shares([labels], 3), [0.25, 0.75, 0.0])

"""One round of the correction loop: retrain on the corrections without making the model worse.

A round fine-tunes the current model on every correction made so far and protects what the
user did not correct:

- **held back**: a band of the corrected pixels (about a fifth, placed where every class has
  pixels) is kept out of training. The round checks the model on it every few iterations,
  keeps the best weights and stops when they stop improving;
- **guard**: the starting model is scored on the same band. A round that does not beat it by
  a margin, or that scores lower than it on any one image's part of the band, is returned
  with ``adopted=False``: the caller keeps it in the history but not as current. The band
  shares its slice with the training pixels, so it flatters the round: the margin grows with
  trust (below), asking a model that already did well for a clear gain, 0.07 at full trust
  (on ISBI, rounds that gained up to 0.02 on the band still lowered the other slices'
  membrane Dice by 0.004 to 0.010; on large nuclei, single-image rounds that gained 0.04 to
  0.06 lowered the other images' Dice by 0.010 to 0.019). A round that helps some corrected
  images and hurts another learned something those images disagree on, and the images nobody
  corrected are as likely to be like the one it hurt;
- **batch norm**: a trained model's statistics are frozen during the round. Before it, they are
  re-estimated on the user's image when that scores better on the held-back band (a model
  meeting a new kind of image), and kept when not (the same kind of image). A model wrong on
  the corrections whose round the guard refuses tries once more with statistics that follow
  the user's images (see ``correction_round``);
- **trust**: how well the starting model already does on the corrections (Dice 0.5 → none,
  0.9 → full), times how reliable its confident pixels are there (the share of its sure
  pixels the user labelled alike, lowest over classes: 0.6 → none, 0.8 → full). A trusted
  model takes smaller steps, and unedited slices (or, for scribbles, the unpainted pixels)
  keep its confident predictions as targets (replay), so it is not pulled away from what it
  already got right elsewhere. A model that is wrong on the corrections (a new kind of
  image) learns at the full rate, without replay. A model with middling Dice whose sure
  pixels are often wrong (a fluorescence model on inverted brightfield: 0.37–0.67) would
  otherwise replay its mistakes;
- **the other kind**: a model wrong on the corrections may be right on unedited slices of
  another kind. With dense corrections, when the classes it finds on the unedited slices are
  in about the corrections' proportions, its sure pixels there are replayed all the same.
  Without that, one corrected image of a new kind amid the model's own kind erased it on the
  rest (one inverted ISBI slice: membrane Dice on the other slices 0.81 → 0.03). The band
  then stands for the new kind only, so the weights the round keeps are chosen by the band
  and by how well they still predict the replayed pixels, half each;
- **sized by the data**: the iteration budget grows with the corrected area, and shrinks for
  a trusted model (small steps gain little from long rounds).

``correction_round`` is a generator: one ``TrainUpdate`` per iteration, then the
:class:`RoundResult`. Closing it cancels the round.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import InputError
from ..evaluation.labelmap import IGNORE_INDEX
from ..inference.scale import central_square, resize
from ..model.channels import looks_rgb
from ..model.modelfile import Model
from . import train as training
from .train import TrainConfig, TrainUpdate, labelled_dice

HOLDOUT_FRACTION = 0.2
MAX_HELD_SHARE = 0.4  # of any one class's corrected pixels
# Context rows given to the network around a held-back band, so its pixels see what they
# would see in the whole slice (the network's reach matters only near the band's edges).
HOLDOUT_CONTEXT = 48
MAX_HOLDOUT_SLICES = 4
MAX_CONTEXT_SLICES = 4
# Unedited slices serve the round as central crops of this side: enough for batch-norm
# statistics and replay patches, at a fraction of the cost of whole slices.
CONTEXT_SIDE = 256
REPLAY_CONFIDENCE = 0.9
# Confident-pixel precision on the corrections at which trust starts and is full. Measured
# per image (lowest class): em-membranes on ISBI 0.88-0.95, nuclei on its own kind 0.95-1.00,
# nuclei on inverted blood-cell images 0.37-0.67.
RELIABLE_FROM, RELIABLE_FULL = 0.6, 0.8
MIN_SURE_PIXELS = 50  # of a class, for its precision to count
# A model wrong on the corrections may still be right on unedited slices of another kind (a
# fluorescence model shown one blood-cell image amid its own kind of image). Where the classes
# it finds on them are within MIX_CLOSE (share of pixels) of the corrections' mix, its sure
# pixels there are replayed as for a trusted model; from MIX_DOUBTFUL on, not at all. Measured:
# nuclei on blood-cell images 0.68-0.79 (wrong there too), em-membranes and nuclei on their
# own kind 0.004-0.10.
MIX_CLOSE, MIX_DOUBTFUL = 0.15, 0.3


@dataclass(frozen=True)
class RoundSettings:
    """Settings of a correction round; the defaults are what the Retrain button runs.

    Iterations: ``min_iterations`` plus ``iterations_per_patch`` for every patch-sized area of
    corrected pixels, at most ``max_iterations``; the round may stop earlier when the held-back
    score has not improved for ``patience`` checks (one every ``check_every`` iterations).
    ``batchnorm``: "auto" (re-estimate on the image when that scores better on the held-back
    band, else keep), "keep", "reestimate" or "live" (statistics follow the training patches).
    ``replay``: the share of patches drawn from the starting model's confident predictions at
    full trust; ``trusted_rate``: the learning rate's factor at full trust (both scale
    linearly with trust). ``anchor``: L2-SP strength toward the starting weights. ``margin``
    plus ``trusted_margin`` times trust: how much better than the starting model a round must
    score on the held-back band. ``untrained_factor`` multiplies the iterations of a round
    that starts from a new network, or from a model without trust (partly in between);
    ``trusted_iterations`` is their factor at full trust (never below ``min_iterations``): a
    model that already does well takes small steps and gains little from long rounds.
    """

    patch_size: int = 128
    batch_size: int = 4
    learning_rate: float = 5e-4
    min_iterations: int = 40
    iterations_per_patch: float = 3.0
    max_iterations: int = 100
    check_every: int = 10
    patience: int = 3
    batchnorm: str = "auto"
    replay: float = 0.5
    trusted_rate: float = 0.4
    anchor: float = 0.0
    margin: float = 0.01
    trusted_margin: float = 0.06
    untrained_factor: float = 2.0
    trusted_iterations: float = 0.6
    iterations: int | None = None  # a fixed count instead of the sized budget
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # of the training steps, see core.model.precision

    def __post_init__(self) -> None:
        if self.batchnorm not in ("auto", "keep", "reestimate", "live"):
            raise InputError(f"unknown batch-norm policy {self.batchnorm!r}")
        if not 0 <= self.replay < 1:
            raise InputError(f"replay share must be in [0, 1), got {self.replay}")
        if not 0 < self.min_iterations <= self.max_iterations:
            raise InputError("need 0 < min_iterations <= max_iterations")


DEFAULT_ROUND = RoundSettings()


@dataclass(frozen=True)
class RoundResult:
    """How a round ended. ``model`` is the trained model whether or not it was adopted."""

    model: Model
    adopted: bool
    before: float | None  # held-back Dice of the starting model (None: nothing held back)
    after: float | None
    # Per corrected image with a held-back band (empty when there is at most one).
    before_each: tuple[float, ...]
    after_each: tuple[float, ...]
    iterations: int
    seconds: float
    batchnorm: str
    replay_share: float
    trust: float
    message: str
    # Of the replayed pixels (the starting model's sure classes elsewhere), the share the
    # trained model gives the same class; None when nothing was replayed.
    kept: float | None = None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def iteration_budget(targets: Sequence[np.ndarray], settings: RoundSettings) -> int:
    """Iterations for a round on ``targets`` (labels with ``IGNORE_INDEX`` where unlabelled)."""
    labelled = sum(int((t != IGNORE_INDEX).sum()) for t in targets)
    patches = labelled / settings.patch_size**2
    wanted = settings.min_iterations + settings.iterations_per_patch * patches
    return int(min(settings.max_iterations, round(wanted)))


def _band_score(label: np.ndarray, top: int, height: int, present: list[int]) -> int:
    """The rarest class's pixels in the band; -1 when the band would take more than
    ``MAX_HELD_SHARE`` of a class (a small image's one nucleus must stay to be learned)."""
    band = label[top : top + height]
    counts = [(int((band == c).sum()), int((label == c).sum())) for c in present]
    if any(inside > MAX_HELD_SHARE * total for inside, total in counts):
        return -1
    return min(inside for inside, _ in counts)


def hold_back(
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    num_classes: int,
    *,
    fraction: float = HOLDOUT_FRACTION,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Split corrections into training targets and held-back (image, label) crops.

    From up to ``MAX_HOLDOUT_SLICES`` corrected slices, a band of ``fraction`` of the rows is
    held back: the band where the rarest class has the most labelled pixels, taking at most
    ``MAX_HELD_SHARE`` of any class. Its labels are
    removed from the training targets; the held-back crop keeps ``HOLDOUT_CONTEXT`` rows of
    image around it (labelled ``IGNORE_INDEX``). A slice is not used when its band would lack
    one of its classes, leave training none of one, or take most of its labels. Returns the training
    targets and the held-back images and labels (both lists empty when nothing was held back).
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(targets))
    train_targets = [np.array(t, dtype=np.int16) for t in targets]
    held_images, held_labels = [], []
    for i in order:
        if len(held_images) == MAX_HOLDOUT_SLICES:
            break
        label = train_targets[i]
        rows = label.shape[0]
        height = max(int(round(rows * fraction)), 1)
        if height >= rows:
            continue
        present = [c for c in range(num_classes) if (label == c).any()]
        starts = range(0, rows - height + 1, max(height // 4, 1))
        top = max(starts, key=lambda s: _band_score(label, s, height, present))
        band = label[top : top + height]
        labelled = int((label != IGNORE_INDEX).sum())
        in_band = int((band != IGNORE_INDEX).sum())
        outside = np.concatenate([label[:top], label[top + height :]])
        if in_band > 0.5 * labelled or any(
            not (band == c).any() or not (outside == c).any() for c in present
        ):
            continue
        low, high = max(top - HOLDOUT_CONTEXT, 0), min(top + height + HOLDOUT_CONTEXT, rows)
        held = np.full((high - low, label.shape[1]), IGNORE_INDEX, dtype=np.int16)
        held[top - low : top - low + height] = band
        held_images.append(np.asarray(images[i])[low:high])
        held_labels.append(held)
        label[top : top + height] = IGNORE_INDEX
    return train_targets, held_images, held_labels


def _batchnorm_layers(network: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def reestimate_batchnorm(model: Model, images: Sequence[np.ndarray]) -> Model:
    """A copy of ``model`` whose batch-norm statistics are those of ``images`` (whole slices).

    Adapts a model to a new kind of image without any label (AdaBN); the weights stay as
    they are. ``images`` are raw slices as the user opened them.
    """
    from ..inference.predict import prepare_slice
    from ..model.unet import pad_to_multiple

    adapted = model.copy()
    network = adapted.network
    layers = _batchnorm_layers(network)
    if not layers:
        return adapted
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over every slice seen
    network.train()
    with torch.no_grad():
        for image in images:
            x = torch.from_numpy(prepare_slice(image, model, looks_rgb(np.asarray(image))))
            padded, _ = pad_to_multiple(x[None], model.config.size_multiple)
            network(padded)
    for layer in layers:
        layer.momentum = 0.1
    network.eval()
    return adapted


def replay_targets(
    model: Model, images: Sequence[np.ndarray], confidence: float = REPLAY_CONFIDENCE
) -> list[np.ndarray]:
    """The model's own classes where it is confident, ``IGNORE_INDEX`` elsewhere."""
    from ..inference.predict import predict

    targets = []
    for image in images:
        image = np.asarray(image)
        probabilities = predict(image, model, rgb=looks_rgb(image)).probabilities
        target = probabilities.argmax(axis=0).astype(np.int16)
        target[probabilities.max(axis=0) < confidence] = IGNORE_INDEX
        targets.append(target)
    return targets


def sure_precision(
    model: Model,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    confidence: float = REPLAY_CONFIDENCE,
) -> float:
    """Of the labelled pixels ``model`` is sure of (probability ≥ ``confidence``), the share
    it gives the user's class: the lowest over classes with ``MIN_SURE_PIXELS`` such pixels
    (1.0 when it is sure of none: nothing of it would be replayed)."""
    from ..inference.predict import predict

    right = np.zeros(model.num_classes)
    total = np.zeros(model.num_classes)
    for image, label in zip(images, labels, strict=True):
        image = np.asarray(image)
        probabilities = predict(image, model, rgb=looks_rgb(image)).probabilities
        predicted = probabilities.argmax(axis=0)
        sure = (probabilities.max(axis=0) >= confidence) & (label != IGNORE_INDEX)
        total += np.bincount(predicted[sure], minlength=model.num_classes)
        hits = sure & (predicted == label)
        right += np.bincount(predicted[hits], minlength=model.num_classes)
    counted = total >= MIN_SURE_PIXELS
    return float((right[counted] / total[counted]).min()) if counted.any() else 1.0


def kept_share(
    model: Model, images: Sequence[np.ndarray], targets: Sequence[np.ndarray]
) -> float | None:
    """Of the pixels ``targets`` label, the share ``model`` gives the same class."""
    from ..inference.predict import predict

    same = total = 0
    for image, target in zip(images, targets, strict=True):
        image = np.asarray(image)
        labels = predict(image, model, rgb=looks_rgb(image)).labels
        known = target != IGNORE_INDEX
        total += int(known.sum())
        same += int((labels[known] == target[known]).sum())
    return same / total if total else None


def class_shares(labels: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """The share of each class among the labelled pixels of ``labels``."""
    counts = sum(
        np.bincount(np.asarray(t)[np.asarray(t) != IGNORE_INDEX].ravel(), minlength=num_classes)
        for t in labels
    )
    return counts / max(int(counts.sum()), 1)


def share_gap(model: Model, images: Sequence[np.ndarray], wanted: np.ndarray) -> float:
    """How far the class shares ``model`` predicts on ``images`` are from ``wanted``: half
    the summed absolute difference, 0 (the same) to 1."""
    from ..inference.predict import predict

    predicted = [predict(np.asarray(i), model, rgb=looks_rgb(np.asarray(i))).labels for i in images]
    return float(np.abs(class_shares(predicted, model.num_classes) - wanted).sum() / 2)


def _spread(items: Sequence, limit: int) -> list:
    if len(items) <= limit:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit)]


def correction_round(
    model: Model,
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    *,
    context: Sequence[np.ndarray] = (),
    settings: RoundSettings = DEFAULT_ROUND,
    scale: float | Sequence[float] = 1.0,
    context_scale: float | Sequence[float] | None = None,
) -> Generator[TrainUpdate | RoundResult, None, None]:
    """Retrain ``model`` on corrections; yields a ``TrainUpdate`` per iteration, then the result.

    ``images`` are the corrected slices as the user opened them (grey or colour, whatever the
    model takes: see ``core.model.channels``); ``targets`` their class labels with ``IGNORE_INDEX``
    where nothing was painted (scribbles). ``context`` holds unedited slices of the same image:
    they serve the batch-norm estimate and the replay. ``scale`` is the factor Segment used
    (``core.inference.scale``), one for all images or one per image: the round trains every image at
    the model's own object scale. ``context_scale`` does the same for ``context`` (default:
    ``scale`` when it is one number, else its median). Inputs are checked before the first
    iteration (``InputError``).
    """
    start = time.perf_counter()
    images = [np.asarray(i) for i in images]
    targets = [np.asarray(t) for t in targets]
    if len(images) != len(targets) or not images:
        raise InputError("a round needs corrected images with one label image each")
    factors = _factors(scale, len(images), "corrected image")
    if context_scale is None:
        context_scale = float(np.median(factors))
    context_factors = _factors(context_scale, len(context), "context image")
    context = _spread(list(zip(context, context_factors, strict=True)), MAX_CONTEXT_SLICES)
    context = [resize(central_square(np.asarray(c), CONTEXT_SIDE / f), f) for c, f in context]
    images = [resize(i, f) for i, f in zip(images, factors, strict=True)]
    targets = [resize(t, f, order=0) for t, f in zip(targets, factors, strict=True)]
    if not any((t != IGNORE_INDEX).any() for t in targets):
        raise InputError("no labelled pixels in the corrections: paint some labels first")
    trained_before = bool(model.provenance.get("training"))
    train_targets, held_images, held_labels = hold_back(
        images, targets, model.num_classes, seed=settings.seed
    )
    labelled_train = [
        (i, t) for i, t in zip(images, train_targets, strict=True) if (t != IGNORE_INDEX).any()
    ]
    if not labelled_train:
        train_targets, held_images, held_labels = [np.asarray(t) for t in targets], [], []
    held = bool(held_images)

    def score(candidate: Model) -> float | None:
        return labelled_dice(candidate, held_images, held_labels, settings.device) if held else None

    def score_each(candidate: Model) -> tuple[float, ...]:
        if len(held_images) < 2:
            return ()
        pairs = zip(held_images, held_labels, strict=True)
        return tuple(labelled_dice(candidate, [i], [t], settings.device) for i, t in pairs)

    before = score(model)
    before_each = score_each(model)
    start_model, policy = model, "live"
    freeze = False
    if trained_before and settings.batchnorm != "live":
        freeze, policy = True, "keep"
        if settings.batchnorm in ("auto", "reestimate"):
            crops = [central_square(i, CONTEXT_SIDE) for i in images[:MAX_CONTEXT_SLICES]]
            adapted = reestimate_batchnorm(model, [*crops, *context])
            if settings.batchnorm == "reestimate" or (held and score(adapted) > before):
                start_model, policy = adapted, "reestimate"

    pairs_images, pairs_targets = list(images), list(train_targets)
    weights = [1.0] * len(images)
    trust = 0.0
    if trained_before:
        # The held-back band stands for the corrections; scoring all of them costs more.
        on_corrections = before if held else labelled_dice(model, images, targets, settings.device)
        trust = float(np.clip((on_corrections - 0.5) / 0.4, 0.0, 1.0))
        if trust > 0:
            sure = sure_precision(
                model, *((held_images, held_labels) if held else (images, targets))
            )
            reliable = (sure - RELIABLE_FROM) / (RELIABLE_FULL - RELIABLE_FROM)
            trust *= float(np.clip(reliable, 0.0, 1.0))
    dense = all((t != IGNORE_INDEX).all() for t in targets)
    replay_trust = trust  # in its sure pixels on the unedited slices
    if trained_before and context and dense:  # a scribble's class mix says nothing
        # The model as the user has it and the one replay learns from (its statistics may
        # be re-estimated) must both find about that mix.
        wanted = class_shares(targets, model.num_classes)
        judged = [model] if start_model is model else [model, start_model]
        gap = max(share_gap(m, context, wanted) for m in judged)
        alike = (MIX_DOUBTFUL - gap) / (MIX_DOUBTFUL - MIX_CLOSE)
        replay_trust = max(trust, float(np.clip(alike, 0.0, 1.0)))
    share = settings.replay * replay_trust
    replay_images, replay = [], []
    if share > 0:
        replay_images, replay = _replay_pairs(start_model, images, targets, context)
        if replay_images:
            pairs_images += replay_images
            pairs_targets += replay
            total = len(images)
            # Replay pairs together draw ``share`` of the patches.
            weights += [share / (1 - share) * total / len(replay_images)] * len(replay_images)
        else:
            share = 0.0
    # A model wrong on the corrections learns a kind of image the band alone stands for: which
    # weights the round keeps also asks what they still predict on the replayed slices (three
    # mixed ISBI stacks: own kind 0.74-0.78 after the round instead of 0.73-0.76).
    keep = trust == 0 and held and any((t != IGNORE_INDEX).any() for t in replay)
    keep_images, keep_labels = (replay_images, replay) if keep else (None, None)

    # A new network, or a model that is wrong on the corrections, has more to learn.
    extra = (settings.untrained_factor - 1) * (1 - trust)
    fewer = 1 - (1 - settings.trusted_iterations) * trust
    sized = max(
        settings.min_iterations,
        int(iteration_budget(train_targets, settings) * (1 + extra) * fewer),
    )
    iterations = settings.iterations or sized
    config = TrainConfig(
        iterations=iterations,
        patch_size=settings.patch_size,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate * (1 - (1 - settings.trusted_rate) * trust),
        seed=settings.seed,
        device=settings.device,
        precision=settings.precision,
        val_every=settings.check_every,
        # A new network's held-back score stalls before it rises again: give it more checks.
        patience=round(settings.patience * (1 + extra)) if held else None,
        # A model that is confidently wrong needs a while before the held-back score moves.
        min_iterations=min(settings.min_iterations, iterations),
        freeze_batchnorm=freeze,
        anchor=settings.anchor,
    )
    margin = settings.margin + settings.trusted_margin * trust

    def attempt(begin: Model, config: TrainConfig, offset: int = 0):
        """Train from ``begin``, yielding updates (numbered after ``offset`` earlier
        iterations); returns the final update (numbered so), its band scores, the images it
        scored lower on and whether the guard adopts it."""
        final = None
        for update in training.train(
            begin,
            pairs_images,
            pairs_targets,
            config=config,
            val_images=held_images or None,
            val_labels=held_labels or None,
            weights=weights,
            keep_images=keep_images,
            keep_labels=keep_labels,
        ):
            if offset:
                update = replace(
                    update, iteration=update.iteration + offset, total=update.total + offset
                )
            final = update
            yield update
            if update.done:
                break
        if final is None or final.model is None:
            raise RuntimeError("training ended without a final update")
        after, after_each = score(final.model), score_each(final.model)
        worse = [(b, a) for b, a in zip(before_each, after_each, strict=True) if a < b]
        adopted = before is None or (after >= before + margin and not worse)
        return final, after, after_each, worse, adopted

    final, after, after_each, worse, adopted = yield from attempt(start_model, config)
    retried = False
    if not adopted and freeze and trust == 0 and dense and settings.batchnorm == "auto":
        # A model wrong on the corrections that could not learn them with its own batch-norm
        # statistics (loop case (c): 2 of 3 single-image rounds ended predicting no nucleus)
        # tries again from the start with statistics that follow the user's images. Those
        # statistics also change what it does on the unedited slices, which the band cannot
        # see: the second try is taken only if the classes it finds there are no further from
        # the corrections' share of each class than the starting model's.
        second = yield from attempt(
            model, replace(config, freeze_batchnorm=False), offset=final.iteration
        )
        last, passes, retried = second[0], second[4], True
        wanted = class_shares(targets, model.num_classes)
        if passes and (
            not context
            or share_gap(last.model, context, wanted) <= share_gap(model, context, wanted)
        ):
            final, after, after_each, worse, adopted = second
            policy = "live"
        final = replace(final, iteration=last.iteration)  # the iterations both tries took
    trained = final.model
    kept = kept_share(trained, replay_images, replay) if replay_images else None
    seconds = time.perf_counter() - start
    history = trained.provenance.get("training")
    if isinstance(history, list) and history:
        history[-1]["round"] = {
            "held_back_before": before,
            "held_back_after": after,
            "held_back_each": [list(before_each), list(after_each)],
            "adopted": adopted,
            "batchnorm": policy,
            "replay_share": round(share, 3),
            "trust": round(trust, 3),
            "replay_trust": round(replay_trust, 3),
        }
    yield RoundResult(
        trained,
        adopted,
        before,
        after,
        before_each,
        after_each,
        final.iteration,
        seconds,
        policy,
        share,
        trust,
        _message(adopted, before, after, final.iteration, seconds, worse, retried, margin, kept),
        kept,
    )


def _factors(scale: float | Sequence[float], count: int, what: str) -> list[float]:
    """One scale factor per image, from a single factor or a sequence of them."""
    if np.ndim(scale) == 0:  # one number (numpy scalars included)
        return [float(scale)] * count
    factors = [float(f) for f in scale]
    if len(factors) != count:
        raise InputError(f"need one scale factor per {what}: got {len(factors)} for {count}")
    if any(not f > 0 for f in factors):
        raise InputError(f"scale factors must be positive, got {factors}")
    return factors


def _replay_pairs(
    model: Model,
    images: list[np.ndarray],
    targets: list[np.ndarray],
    context: Sequence[np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Replay pairs: unedited slices, or the unpainted pixels of scribbled slices."""
    if context:
        return list(context), replay_targets(model, context)
    sparse = [(i, t) for i, t in zip(images, targets, strict=True) if (t == IGNORE_INDEX).any()]
    if not sparse:
        return [], []
    predicted = replay_targets(model, [i for i, _ in sparse])
    replay = []
    for (_, target), guess in zip(sparse, predicted, strict=True):
        guess[target != IGNORE_INDEX] = IGNORE_INDEX  # painted pixels train with full weight
        replay.append(guess)
    return [i for i, _ in sparse], replay


def _message(
    adopted: bool,
    before: float | None,
    after: float | None,
    iterations: int,
    seconds: float,
    worse: Sequence[tuple[float, float]] = (),
    retried: bool = False,
    margin: float = 0.0,
    kept: float | None = None,
) -> str:
    run = f"{_count(iterations, 'iteration')}, {seconds:.0f} s"
    if retried:
        run += ", a second try with batch-norm statistics from your images"
    if kept is not None:
        # What the band cannot see: how much of the model's sure result elsewhere is left.
        run += f", keeps {kept:.1%} of what the previous model was sure of elsewhere"
    if before is None or after is None:
        return f"{run}; too few corrections to hold some back, so the round was not checked"
    scores = f"{after:.3f} on held-back corrections vs {before:.3f} before"
    if adopted:
        return f"{run}; {scores}"
    if worse:
        b, a = min(worse, key=lambda pair: pair[1] - pair[0])
        images = "one corrected image" if len(worse) == 1 else f"{len(worse)} corrected images"
        scores += f", but lower on {images} ({a:.3f} vs {b:.3f})"
    elif after > before:
        needed = before + margin  # above 1, no score on the band could show enough gain
        scores += (
            f", short of the {needed:.3f} needed"
            if needed <= 1.0
            else ", and the current model is too close to perfect on them to replace"
        )
    return f"{run}; {scores}: kept the previous model"


def run_round(updates: Generator[TrainUpdate | RoundResult, None, None]) -> RoundResult:
    """Consume a round and return its result (scripts, benchmarks, tests)."""
    result = None
    for item in updates:
        if isinstance(item, RoundResult):
            result = item
    if result is None:
        raise RuntimeError("the round ended without a result")
    return result


def with_iterations(settings: RoundSettings, iterations: int) -> RoundSettings:
    """``settings`` with a fixed iteration count (the Retrain widget's field, when the user
    sets one)."""
    return replace(
        settings, iterations=iterations, min_iterations=min(iterations, settings.min_iterations)
    )

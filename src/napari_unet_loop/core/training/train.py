"""Train (or fine-tune) a model on image/label pairs, as a generator of progress updates.

``train`` checks its inputs at once (raising ``InputError``) and returns a generator that runs
one training iteration per ``next()`` and yields a :class:`TrainUpdate` after each. The input
model is never modified; the last update (``done=True``) carries a new model, on the CPU and in
eval mode, with the run recorded in ``provenance["training"]``.

Each yield is a place to stop:

- cancel: stop iterating or call ``updates.close()``; nothing else happens and no model is made;
- finish early: ``finish_early(updates)`` ends training now and returns the final update with the
  model trained so far (the best validated weights when validation data was given);
- ``run_to_end(updates)`` runs to the end and returns the new model (CLI, scripts, tests).

Runs are reproducible: the same seed and inputs give the same losses on the CPU. Patches are
drawn with a numpy Generator, and torch's global RNG is only used inside a fork seeded per step.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import numpy as np
import torch

from ..errors import DeviceMemoryError, InputError, TrainingDivergedError
from ..evaluation.labelmap import IGNORE_INDEX
from ..evaluation.metrics import ConfusionCounts, confusion_counts, mean_foreground_dice
from ..inference.scale import record_scale
from ..model.channels import looks_rgb, model_channels
from ..model.devices import (
    autocast_dtype,
    free_cached_memory,
    get_device,
    is_out_of_memory,
    memory_format,
    to_device,
)
from ..model.modelfile import Model
from ..model.normalize import training_background
from ..model.precision import check_precision, precision_name, resolve_precision
from .augment import NO_AUGMENTATION, AugmentSettings, PatchSampler
from .datasets import check_image_values
from .losses import segmentation_loss

__all__ = [
    "IGNORE_INDEX",
    "TrainConfig",
    "TrainUpdate",
    "finish_early",
    "labelled_dice",
    "learning_rate_at",
    "run_to_end",
    "train",
]

log = logging.getLogger(__name__)

# Sent into the generator by finish_early().
_FINISH = "finish"

SCHEDULES = ("constant", "cosine")
SCALE_SAMPLES = 48  # a new network's scale record is measured on at most about this many images


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    ``patience`` counts validation checks (every ``val_every`` iterations) without a better
    validation Dice (with pixels to keep, see ``train``: a better mean of the two Dice)
    before stopping, never before ``min_iterations``; None disables early stopping, which
    needs validation data. The history's ``best_val_dice`` is the validation Dice of the
    weights kept. A check that equals the best so far counts as better: the later, more
    trained weights are kept.
    ``schedule`` "cosine" lowers the learning rate along a half cosine to zero at the last
    iteration; "constant" keeps it. ``elastic`` is the elastic deformation strength in pixels
    (see ``augment.AugmentSettings``); 0 leaves it out. ``anchor`` is the strength of an L2
    penalty toward the starting weights (L2-SP; 0 is off), for fine-tuning. ``precision``
    (auto, fp32, bf16, fp16) is the arithmetic of the steps (see ``core.model.precision``).
    """

    iterations: int = 500
    patch_size: int = 128
    batch_size: int = 4
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    dice_weight: float = 1.0
    augment: bool = True
    seed: int = 0
    val_every: int = 50
    patience: int | None = None
    min_iterations: int = 0
    device: str = "auto"
    # None: freeze when fine-tuning a model that was trained before (its provenance says so)
    freeze_batchnorm: bool | None = False
    schedule: str = "constant"
    elastic: float = 0.0
    anchor: float = 0.0
    precision: str = "auto"

    def __post_init__(self) -> None:
        check_precision(self.precision)
        positive = {
            "iterations": self.iterations,
            "batch_size": self.batch_size,
            "val_every": self.val_every,
            "learning_rate": self.learning_rate,
        }
        for name, value in positive.items():
            if not value > 0:
                raise InputError(f"training {name} must be positive, got {value}")
        if self.patch_size < 8:
            raise InputError(f"training patch size must be at least 8, got {self.patch_size}")
        if self.weight_decay < 0 or self.dice_weight < 0 or self.anchor < 0:
            raise InputError("weight decay, Dice weight and anchor must not be negative")
        if self.schedule not in SCHEDULES:
            raise InputError(
                f"unknown learning-rate schedule {self.schedule!r}: use {' or '.join(SCHEDULES)}"
            )
        if self.elastic < 0:
            raise InputError(f"elastic strength must not be negative, got {self.elastic}")
        if self.patience is not None and self.patience < 1:
            raise InputError(f"patience must be at least 1 (or off), got {self.patience}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainUpdate:
    """Progress after one iteration; ``model`` is set on the final update only."""

    iteration: int
    total: int
    loss: float
    val_dice: float | None
    elapsed_s: float
    done: bool = False
    model: Model | None = None
    stopped_early: bool = False


def _as_pairs(images, labels) -> tuple[list, list]:
    """Lists of 2D slices from lists of slices, from stacks, or from one image and its labels."""
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        return [images], [labels]
    images, labels = list(images), list(labels)
    if len(images) != len(labels):
        raise InputError(f"{len(images)} images but {len(labels)} label images")
    return images, labels


def _prepare(model: Model, images, labels, what: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Check each pair against the model and normalise the image once."""
    pairs = []
    channels = model.in_channels
    for index, (image, label) in enumerate(zip(*_as_pairs(images, labels), strict=True)):
        name = f"{what} {index}"
        image, label = np.asarray(image), np.asarray(label)
        check_image_values(image, name)
        if label.dtype == bool:
            label = label.astype(np.int16)
        if not np.issubdtype(label.dtype, np.integer):
            raise InputError(f"{name}: labels must be integer class indices, not {label.dtype}")
        if label.ndim != 2 or label.size == 0:
            raise InputError(f"{name}: labels must be one 2D slice, got shape {label.shape}")
        if channels == 1 and image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim == 2 or looks_rgb(image):
            # Grey and colour meet the model as Segment feeds them (one rule for both).
            image = model_channels(image, model, rgb=image.ndim == 3)
        expected = "(Y, X)" if channels == 1 else f"(Y, X, {channels})"
        if image.ndim != (2 if channels == 1 else 3) or (
            channels > 1 and image.shape[-1] != channels
        ):
            raise InputError(f"{name}: the model needs {expected} images, got shape {image.shape}")
        if image.shape[:2] != label.shape:
            raise InputError(
                f"{name}: image is {image.shape[0]}x{image.shape[1]} but its labels are "
                f"{label.shape[0]}x{label.shape[1]}"
            )
        low, high = int(label.min()), int(label.max())
        if high >= model.num_classes:
            raise InputError(
                f"{name}: label value {high} but the model has {model.num_classes} classes "
                f"({', '.join(model.class_names)}: 0 to {model.num_classes - 1})"
            )
        if low < IGNORE_INDEX:
            raise InputError(f"{name}: label value {low}; use {IGNORE_INDEX} for unlabelled pixels")
        pairs.append((model.normalization(image), label.astype(np.int16)))
    if not any((label != IGNORE_INDEX).any() for _, label in pairs):
        raise InputError(f"no labelled pixels in the {what}s: paint some labels first")
    return pairs


def train(
    model: Model,
    images: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[np.ndarray] | np.ndarray,
    *,
    config: TrainConfig | None = None,
    val_images: Sequence[np.ndarray] | np.ndarray | None = None,
    val_labels: Sequence[np.ndarray] | np.ndarray | None = None,
    weights: Sequence[float] | None = None,
    keep_images: Sequence[np.ndarray] | None = None,
    keep_labels: Sequence[np.ndarray] | None = None,
) -> Generator[TrainUpdate, object, None]:
    """Train a copy of ``model``; returns a generator of one :class:`TrainUpdate` per iteration.

    ``images`` are 2D slices (Y, X) or RGB (Y, X, C) (a list, a stack, or one image) with
    matching integer ``labels`` (Y, X): class indices, ``IGNORE_INDEX`` (-1) for unlabelled
    pixels. Images may differ in size. Optional validation pairs give ``val_dice`` (mean Dice of
    the foreground classes) every ``config.val_every`` iterations, and enable early stopping.
    ``weights`` (one per training pair) make some pairs give patches more often than others.
    ``keep_images`` and ``keep_labels`` (with validation pairs) are what the model should go
    on predicting: the best weights, and early stopping, then follow the mean of the
    validation Dice and the Dice on these, while ``val_dice`` still reports the validation
    pairs alone. Inputs are checked before this returns (``InputError``); the device is
    resolved too.
    """
    config = config or TrainConfig()
    pairs = _prepare(model, images, labels, "training image")
    if weights is not None and (
        len(weights) != len(pairs) or not all(np.isfinite(w) and w >= 0 for w in weights)
    ):
        raise InputError("give one finite, non-negative sampling weight per training image")
    if (val_images is None) != (val_labels is None):
        raise InputError("give both validation images and validation labels, or neither")
    keeping = keep_images is not None
    if keeping != (keep_labels is not None) or (keeping and val_images is None):
        raise InputError("pixels to keep need their labels and validation pairs beside them")
    val_pairs = keep_pairs = None
    if val_images is not None:
        val_pairs = _prepare(model, val_images, val_labels, "validation image")
    if keeping:
        keep_pairs = _prepare(model, keep_images, keep_labels, "kept image")
    device = get_device(config.device)
    resolve_precision(config.precision, device)  # an impossible choice fails now, not later
    return _training_loop(model, pairs, val_pairs, config, device, weights, keep_pairs)


def _training_mode(network: torch.nn.Module, freeze_batchnorm: bool) -> None:
    """Train mode; with ``freeze_batchnorm`` the running statistics stay as they are, so a few
    patches of one corrected slice cannot shift what the model learnt from all its data."""
    network.train()
    if freeze_batchnorm:
        for module in network.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def _train_step(
    network, optimizer, scaler, images, targets, config, device, dtype, anchor=None
) -> float:
    """One optimisation step on a batch; returns the loss (without the anchor term)."""
    x = to_device(torch.from_numpy(images), device)
    y = torch.from_numpy(targets).to(device, non_blocking=True)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        logits = network(x)
    loss = segmentation_loss(logits, y, config.dice_weight)
    total = loss
    if anchor is not None:
        # L2-SP: pull toward the starting weights, not toward zero, so a round keeps what the
        # model knew wherever the corrections say nothing.
        pairs = zip(network.parameters(), anchor, strict=True)
        drift = sum(((p - p0) ** 2).sum() for p, p0 in pairs)
        total = loss + config.anchor * drift
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def _validation_dice(network, pairs, num_classes, device, dtype) -> float:
    """Mean foreground Dice over all labelled validation pixels (``mean_foreground_dice``)."""
    network.eval()
    counts = ConfusionCounts.zeros(num_classes)
    with torch.inference_mode():
        for image, label in pairs:
            chw = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
            x = to_device(torch.from_numpy(np.ascontiguousarray(chw))[None], device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                predicted = network(x).argmax(1)[0].cpu().numpy()
            counts += confusion_counts(predicted, label, num_classes, ignore=IGNORE_INDEX)
    return mean_foreground_dice(counts)


def labelled_dice(
    model: Model,
    images: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[np.ndarray] | np.ndarray,
    device: str = "auto",
) -> float:
    """Mean foreground Dice of ``model`` over the labelled pixels of ``labels``.

    The score training validates with (``evaluation.metrics.mean_foreground_dice``), so a
    round and its guard compare models by the rule every other score follows.
    """
    pairs = _prepare(model, images, labels, "image")
    torch_device = get_device(device)
    network = model.network.to(torch_device).to(memory_format=memory_format(torch_device))
    try:
        return _validation_dice(
            network, pairs, model.num_classes, torch_device, autocast_dtype(torch_device)
        )
    finally:
        model.network.cpu()


def learning_rate_at(config: TrainConfig, iteration: int) -> float:
    """The learning rate of the step after ``iteration`` finished steps."""
    if config.schedule == "constant":
        return config.learning_rate
    return float(config.learning_rate * 0.5 * (1.0 + np.cos(np.pi * iteration / config.iterations)))


def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _training_loop(
    model: Model,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    val_pairs: list[tuple[np.ndarray, np.ndarray]] | None,
    config: TrainConfig,
    device: torch.device,
    weights: Sequence[float] | None = None,
    keep_pairs: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Generator[TrainUpdate, object, None]:
    start = time.perf_counter()
    trained = model.copy()
    if not model.provenance.get("training") and trained.normalization.background is None:
        # A new network: record the background it learns on, so Segment can invert an image
        # of the other kind (core.model.normalize).
        background = training_background(image for image, _ in pairs)
        trained.normalization = replace(trained.normalization, background=background)
    if not model.provenance.get("training") and "scale" not in trained.provenance:
        # and the scale it learns at, so Segment can bring other images to it
        every = max(len(pairs) // SCALE_SAMPLES, 1)
        record_scale(trained.provenance, *zip(*pairs[::every], strict=True))
    network = trained.network.to(device).to(memory_format=memory_format(device))
    freeze = config.freeze_batchnorm
    if freeze is None:
        freeze = bool(model.provenance.get("training"))
    _training_mode(network, freeze)
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    dtype = resolve_precision(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    sampler = PatchSampler(
        [image for image, _ in pairs],
        [label for _, label in pairs],
        config.patch_size,
        settings=AugmentSettings(elastic=config.elastic) if config.augment else NO_AUGMENTATION,
        pair_weights=weights,
    )
    anchor = [p.detach().clone() for p in network.parameters()] if config.anchor else None
    rng = np.random.default_rng(config.seed)
    batch_size = config.batch_size
    losses: list[float] = []
    best_dice: float | None = None
    best_score: float | None = None
    best_state: dict | None = None
    checks_without_gain = 0

    def validate() -> float:
        nonlocal best_dice, best_score, best_state, checks_without_gain
        dice = _validation_dice(network, val_pairs, trained.num_classes, device, dtype)
        score = dice
        if keep_pairs:
            kept = _validation_dice(network, keep_pairs, trained.num_classes, device, dtype)
            score = (dice + kept) / 2
        _training_mode(network, freeze)
        if best_score is None or score >= best_score:
            best_dice, best_score, checks_without_gain = dice, score, 0
            best_state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
        else:
            checks_without_gain += 1
        return dice

    def final_update(iteration: int, loss: float, val_dice, stopped_early: bool) -> TrainUpdate:
        if best_state is not None:
            network.load_state_dict(best_state)
        network.cpu().eval()
        elapsed = time.perf_counter() - start
        entry = {
            "iterations": iteration,
            "images": len(pairs),
            "labelled_pixels": int(sum((label != IGNORE_INDEX).sum() for _, label in pairs)),
            "config": config.to_dict(),
            "batch_size_used": batch_size,
            "device": str(device),
            "precision": precision_name(dtype),
            "final_loss": float(np.mean(losses[-10:])),
            "best_val_dice": best_dice,
            "stopped_early": stopped_early,
            "seconds": round(elapsed, 2),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        history = trained.provenance.get("training")
        trained.provenance["training"] = [*(history if isinstance(history, list) else []), entry]
        return TrainUpdate(
            iteration, config.iterations, loss, val_dice, elapsed, True, trained, stopped_early
        )

    iteration = 0
    while iteration < config.iterations:
        if config.schedule == "cosine":
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(config, iteration)
        images, targets = sampler.batch(batch_size, rng)
        step_seed = int(rng.integers(2**31))
        try:
            # Dropout draws from torch's global RNG: seed a fork of it so runs repeat exactly
            # and the caller's RNG state is left alone.
            with torch.random.fork_rng(devices=_rng_devices(device)):
                torch.manual_seed(step_seed)
                loss = _train_step(
                    network, optimizer, scaler, images, targets, config, device, dtype, anchor
                )
        except RuntimeError as error:
            if not is_out_of_memory(error):
                raise
            loss = None
        if loss is None:
            optimizer.zero_grad(set_to_none=True)
            free_cached_memory(device)
            if batch_size == 1:
                raise DeviceMemoryError(
                    f"out of GPU memory even with batch size 1 and {config.patch_size} px "
                    "patches: use smaller patches or train on the CPU"
                )
            batch_size //= 2
            log.warning("out of GPU memory: continuing with batch size %d", batch_size)
            continue
        if not np.isfinite(loss):
            raise TrainingDivergedError(
                f"training diverged: the loss became {loss} at iteration {iteration + 1}; "
                "lower the learning rate (no model was made)"
            )
        iteration += 1
        losses.append(loss)
        last = iteration == config.iterations
        val_dice = None
        if val_pairs is not None and (last or iteration % config.val_every == 0):
            val_dice = validate()
        stop = (
            config.patience is not None
            and val_dice is not None
            and checks_without_gain >= config.patience
            and iteration >= config.min_iterations
        )
        if last or stop:
            yield final_update(iteration, loss, val_dice, stopped_early=stop and not last)
            return
        elapsed = time.perf_counter() - start
        command = yield TrainUpdate(iteration, config.iterations, loss, val_dice, elapsed)
        if command == _FINISH:
            if val_pairs is not None and val_dice is None:
                val_dice = validate()
            yield final_update(iteration, loss, val_dice, stopped_early=False)
            return


def finish_early(updates: Generator[TrainUpdate, object, None]) -> TrainUpdate:
    """End a running ``train`` generator now and return its final update, with the model.

    Call it between iterations (e.g. when the user presses Stop but wants to keep the result);
    a generator that has not run an iteration yet runs one first.
    """
    if inspect.getgeneratorstate(updates) == inspect.GEN_CREATED:
        first = next(updates)
        if first.done:
            return first
    return updates.send(_FINISH)


def run_to_end(updates: Iterator[TrainUpdate]) -> Model:
    """Consume all updates and return the new model from the final one."""
    final = None
    for update in updates:
        final = update
    if final is None or final.model is None:
        raise RuntimeError("training ended without a final update")
    return final.model

"""Segmentation losses that honour an ignore mask.

Pixels whose label is ``ignore_index`` (-1: not annotated) contribute nothing, neither to the
value nor to the gradient. A batch with no annotated pixel gives a loss of exactly zero that is
still connected to the logits, so ``backward()`` works and nothing becomes NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -1


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Mean cross-entropy over annotated pixels.

    ``logits`` (N, C, H, W) float; ``target`` (N, H, W) integer class indices.
    """
    per_pixel = F.cross_entropy(logits, target.long(), ignore_index=ignore_index, reduction="none")
    annotated = (target != ignore_index).sum().clamp_min(1)
    return per_pixel.sum() / annotated


def soft_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    smooth: float = 1.0,
) -> torch.Tensor:
    """1 - mean over classes of the soft Dice of softmax probabilities, over annotated pixels.

    Dice is summed over the whole batch (not per image), which keeps it stable when a patch
    holds only a few annotated strokes. ``smooth`` keeps absent classes finite.
    """
    num_classes = logits.shape[1]
    mask = (target != ignore_index).unsqueeze(1).to(logits.dtype)
    probs = torch.softmax(logits, dim=1) * mask
    classes = target.long().clamp_min(0)
    one_hot = F.one_hot(classes, num_classes).permute(0, 3, 1, 2).to(logits.dtype) * mask
    dims = (0, 2, 3)
    overlap = (probs * one_hot).sum(dims)
    total = probs.sum(dims) + one_hot.sum(dims)
    dice = (2.0 * overlap + smooth) / (total + smooth)
    return 1.0 - dice.mean()


def segmentation_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    dice_weight: float = 1.0,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Cross-entropy plus ``dice_weight`` times soft Dice loss, computed in float32."""
    logits = logits.float()
    loss = cross_entropy(logits, target, ignore_index)
    if dice_weight:
        loss = loss + dice_weight * soft_dice_loss(logits, target, ignore_index)
    return loss

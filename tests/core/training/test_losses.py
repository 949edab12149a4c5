import pytest
import torch
import torch.nn.functional as F

from napari_unet_loop.core.training.losses import (
    IGNORE_INDEX,
    cross_entropy,
    segmentation_loss,
    soft_dice_loss,
)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 16, 16, generator=gen)
    target = torch.randint(0, 3, (2, 16, 16), generator=gen)
    ignored = torch.rand(2, 16, 16, generator=gen) < 0.4
    return logits, target, ignored


def test_cross_entropy_matches_torch_when_fully_labelled(batch):
    logits, target, _ = batch
    assert torch.allclose(cross_entropy(logits, target), F.cross_entropy(logits, target))


def test_dice_loss_is_low_for_right_and_high_for_wrong_predictions(batch):
    _, target, _ = batch
    right = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 20
    wrong = F.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).float() * 20
    assert soft_dice_loss(right, target) < 0.01
    assert soft_dice_loss(wrong, target) > 0.99


@pytest.mark.parametrize("loss_fn", [cross_entropy, soft_dice_loss, segmentation_loss])
def test_ignored_pixels_do_not_change_the_loss(batch, loss_fn):
    logits, target, ignored = batch
    target = target.masked_fill(ignored, IGNORE_INDEX)
    base = loss_fn(logits, target)
    # Any change of the predictions at ignored pixels leaves the loss as it was ...
    changed = torch.where(ignored.unsqueeze(1), torch.randn_like(logits) * 10, logits)
    assert torch.allclose(loss_fn(changed, target), base)
    # ... and no gradient reaches them.
    logits = logits.clone().requires_grad_(True)
    loss_fn(logits, target).backward()
    grad_at_ignored = logits.grad.permute(0, 2, 3, 1)[ignored]
    assert torch.count_nonzero(grad_at_ignored) == 0
    assert torch.count_nonzero(logits.grad) > 0


def test_ignored_pixels_equal_dropping_them(batch):
    logits, target, ignored = batch
    masked = target.masked_fill(ignored, IGNORE_INDEX)
    keep = ~ignored
    # Flatten the labelled pixels into a 1-row image: the same loss as with the ignore mask.
    flat_logits = logits.permute(1, 0, 2, 3)[:, keep].reshape(1, 3, 1, -1)
    flat_target = target[keep].reshape(1, 1, -1)
    assert torch.allclose(cross_entropy(logits, masked), cross_entropy(flat_logits, flat_target))
    assert torch.allclose(
        soft_dice_loss(logits, masked), soft_dice_loss(flat_logits, flat_target), atol=1e-6
    )


@pytest.mark.parametrize("loss_fn", [cross_entropy, soft_dice_loss, segmentation_loss])
def test_fully_ignored_batch_gives_zero_loss_with_gradient(batch, loss_fn):
    logits, target, _ = batch
    logits = logits.clone().requires_grad_(True)
    loss = loss_fn(logits, torch.full_like(target, IGNORE_INDEX))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.count_nonzero(logits.grad) == 0


def test_segmentation_loss_weights_dice(batch):
    logits, target, _ = batch
    ce = cross_entropy(logits, target)
    assert torch.allclose(segmentation_loss(logits, target, dice_weight=0.0), ce)
    expected = ce + 0.5 * soft_dice_loss(logits, target)
    assert torch.allclose(segmentation_loss(logits, target, dice_weight=0.5), expected)
    assert segmentation_loss(logits.half(), target).dtype == torch.float32

"""Batch norm folded into the convolution before it, for inference only.

In eval mode a batch norm is a per-channel scale and shift, which the convolution's weights and
bias can absorb: one pass over each activation instead of two, with the same result up to float
rounding (measured 5e-6 on the logits of the shipped net). Folding makes a copy; the network a
model trains stays as it is, with its running statistics.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .unet import UNet


def fold_batchnorm(network: nn.Module) -> nn.Module:
    """An eval-mode copy of a ``UNet`` with every Conv2d → BatchNorm2d pair fused into one Conv2d.

    Any other module (a wrapper, a test double) is returned as it is: only the U-Net's layout
    is known to be safe to rewrite.
    """
    if not isinstance(network, UNet) or not network.config.batch_norm:
        return network
    folded = copy.deepcopy(network).eval()
    for block in folded.modules():
        if not isinstance(block, nn.Sequential):
            continue
        for i in range(len(block) - 1):
            conv, norm = block[i], block[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                block[i], block[i + 1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
    return folded

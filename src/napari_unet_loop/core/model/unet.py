"""The U-Net: configurable depth, width, batch norm, dropout, channels and classes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Labels are written as uint8 class indices.
MAX_CLASSES = 256
MAX_DEPTH = 6
MAX_BASE_CHANNELS = 256
# Channels of the bottom layer: 2048 makes a network of about 125 M weights (0.5 GB).
MAX_WIDTH = 2048


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a U-Net; stored in model files so a network can be rebuilt."""

    in_channels: int = 1
    num_classes: int = 2
    depth: int = 4
    base_channels: int = 16
    batch_norm: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        # Also the bounds a model file must keep: checked before any layer is allocated.
        for name in ("in_channels", "num_classes", "depth", "base_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm must be true or false, got {self.batch_norm!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise ValueError(f"dropout must be a number, got {self.dropout!r}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {self.in_channels}")
        if not 2 <= self.num_classes <= MAX_CLASSES:
            raise ValueError(f"num_classes must be 2 to {MAX_CLASSES}, got {self.num_classes}")
        if not 1 <= self.depth <= MAX_DEPTH:
            raise ValueError(f"depth must be between 1 and {MAX_DEPTH}, got {self.depth}")
        if not 1 <= self.base_channels <= MAX_BASE_CHANNELS:
            raise ValueError(
                f"base_channels must be 1 to {MAX_BASE_CHANNELS}, got {self.base_channels}"
            )
        if self.base_channels * 2**self.depth > MAX_WIDTH:
            raise ValueError(
                f"base_channels × 2^depth must be at most {MAX_WIDTH} (the widest layer), got "
                f"{self.base_channels} × 2^{self.depth}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def size_multiple(self) -> int:
        """Input sides must be a multiple of this; other sizes are padded."""
        return 2**self.depth

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> UNetConfig:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the last two dims of ``x`` at the bottom/right up to ``multiple``.

    Reflection keeps image statistics at the border; tiny inputs fall back to
    replication. Returns the padded tensor and the original (height, width).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, batch_norm: bool, dropout: float) -> None:
        layers: list[nn.Module] = []
        for i, c in enumerate((cin, cout)):
            layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            if dropout and i == 1:
                layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with same-padding convolutions.

    Any height and width are accepted: the input is padded to a multiple of
    ``2**depth`` and the logits are cropped back to the input size.
    """

    def __init__(self, config: UNetConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = config or UNetConfig(**kwargs)
        c = self.config
        self.size_multiple = c.size_multiple  # a plain int, so TorchScript can compile forward
        widths = [c.base_channels * 2**i for i in range(c.depth + 1)]
        self.down = nn.ModuleList()
        cin = c.in_channels
        for w in widths[:-1]:
            self.down.append(_DoubleConv(cin, w, c.batch_norm, 0.0))
            cin = w
        self.bottom = _DoubleConv(widths[-2], widths[-1], c.batch_norm, c.dropout)
        self.up = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        for w_low, w in zip(reversed(widths[1:]), reversed(widths[:-1]), strict=True):
            self.up.append(nn.ConvTranspose2d(w_low, w, 2, stride=2))
            self.up_conv.append(_DoubleConv(2 * w, w, c.batch_norm, 0.0))
        self.head = nn.Conv2d(widths[0], c.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, num_classes, H, W) for input (N, in_channels, H, W)."""
        x, (h, w) = pad_to_multiple(x, self.size_multiple)
        skips: list[torch.Tensor] = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        # indexing rather than zip(..., reversed(skips), strict=True): TorchScript compiles this
        for i, (up, conv) in enumerate(zip(self.up, self.up_conv)):  # noqa: B905
            x = conv(torch.cat([up(x), skips[-1 - i]], dim=1))
        return self.head(x)[..., :h, :w]

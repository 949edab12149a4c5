"""Intensity normalization, applied per 2D slice (or per RGB image) before the network.

``percentile`` (the default) maps the ``low`` and ``high`` percentiles of the slice to 0 and 1;
values outside stay linear (not clipped). For RGB the percentiles are taken over all channels
together, so colour ratios are kept. ``scale`` divides by a fixed number (e.g. 255), ``none``
passes values through as float32. Normalising whole slices, never tiles, keeps tiled inference
equal to whole-image inference.

Non-finite pixels (NaN, ±Inf) follow one rule: they are left out of the percentiles, and the
network sees them as 0 after normalisation (the low percentile), like any value that would not
be finite after normalising. The rest of the slice is normalised as if they were not there. Any
positive intensity range is stretched to 0..1, however small (float images of range 1e-9 too);
only a constant slice maps to 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MODES = ("percentile", "scale", "none")


@dataclass(frozen=True)
class Normalization:
    mode: str = "percentile"
    low: float = 1.0
    high: float = 99.8
    scale: float = 255.0

    def __post_init__(self) -> None:
        for name in ("low", "high", "scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"normalization {name} must be a number, got {value!r}")
            if not np.isfinite(value):
                raise ValueError(f"normalization {name} must be finite, got {value!r}")
        if not self.scale > 0:
            raise ValueError(f"normalization scale must be positive, got {self.scale!r}")
        if self.mode not in MODES:
            raise ValueError(f"normalization mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "percentile" and not 0 <= self.low < self.high <= 100:
            raise ValueError(f"need 0 <= low < high <= 100, got {self.low}, {self.high}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Normalise one slice (Y, X) or RGB image (Y, X, C) to float32."""
        x = np.asarray(image, dtype=np.float32)
        return self.apply(x, self.parameters(x))

    def parameters(self, image: np.ndarray) -> tuple[float, float]:
        """``(offset, divisor)`` for a whole slice: normalised = (x - offset) / divisor.

        Computed apart from :meth:`apply` so that pieces of a slice (distributed tiles) can be
        normalised exactly as the whole slice is.
        """
        fixed = self.fixed_parameters()
        if fixed is not None:
            return fixed
        values = np.asarray(image, dtype=np.float32)
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
        if values.size == 0:
            return 0.0, 1.0
        lo, hi = (float(v) for v in np.percentile(values, (self.low, self.high)))
        return lo, (hi - lo if hi > lo else 1.0)

    def fixed_parameters(self) -> tuple[float, float] | None:
        """The parameters when they do not depend on the slice (``none``, ``scale``), else None."""
        if self.mode == "none":
            return 0.0, 1.0
        if self.mode == "scale":
            return 0.0, float(self.scale)
        return None

    @staticmethod
    def apply(image: np.ndarray, parameters: tuple[float, float]) -> np.ndarray:
        """Normalise (part of) a slice with its slice's :meth:`parameters`, in float32."""
        offset, divisor = parameters
        x = np.asarray(image, dtype=np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            out = (x - np.float32(offset)) / np.float32(divisor)
        finite = np.isfinite(out)
        if not finite.all():
            out[~finite] = 0.0
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

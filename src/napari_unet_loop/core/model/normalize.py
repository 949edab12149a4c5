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

Polarity: fluorescence shows bright objects on a dark background, brightfield and stained
slides dark objects on a bright one. A one-channel model records which its training images
had (``background``: "dark", "bright", or None when they were mixed or in between, as EM
is), and ``polarity="auto"`` inverts a grey slice whose background is clearly the other
kind (median and skew of its normalised values, see :func:`background_of`), so a model trained
on fluorescence sees a brightfield image the way it was trained (the shipped models record no
background: the README says why). ``keep`` never inverts, ``invert`` always does. Colour
images are never inverted: an inverted stain is not another stain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

MODES = ("percentile", "scale", "none")
POLARITIES = ("auto", "keep", "invert")
BACKGROUNDS = ("dark", "bright")
# Measured on normalised grey slices: fluorescence nuclei have medians 0.00-0.13 and skews
# 0.7-24, grey blood-cell images medians 0.50-1.00 and skews -2.9-0.2. A slice is called
# only when it is well inside one side, so slices in between are never inverted (a densely
# packed fluorescence field, its nuclei over half of it, may have a median near 0.5).
DARK_MEDIAN, DARK_SKEW = 0.25, 0.5
BRIGHT_MEDIAN, BRIGHT_SKEW = 0.6, -0.3
# A model's background is the one shared by this share of its training slices.
TRAINING_AGREEMENT = 0.9
STATISTICS_SAMPLE = 1_000_000  # values enough for a median and a skew


@dataclass(frozen=True)
class Normalization:
    mode: str = "percentile"
    low: float = 1.0
    high: float = 99.8
    scale: float = 255.0
    polarity: str = "auto"
    background: str | None = None  # of the training images, see the module's notes

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
        if self.polarity not in POLARITIES:
            raise ValueError(f"polarity must be one of {POLARITIES}, got {self.polarity!r}")
        if self.background is not None and self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS} or None")

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
        if hi > lo and self._inverts(values, image.ndim, lo, hi):
            return hi, lo - hi  # (x - hi) / (lo - hi) = 1 - (x - lo) / (hi - lo)
        return lo, (hi - lo if hi > lo else 1.0)

    def inverts(self, image: np.ndarray) -> bool:
        """Whether this slice (Y, X) or RGB image is inverted before the network."""
        _, divisor = self.parameters(image)
        return divisor < 0

    def _inverts(self, values: np.ndarray, ndim: int, lo: float, hi: float) -> bool:
        if ndim != 2 or self.polarity == "keep":
            return False
        if self.polarity == "invert":
            return True
        if self.background is None:
            return False
        found = background_of((_sample(values) - lo) / (hi - lo))
        return found is not None and found != self.background

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


def background_of(normalised: np.ndarray) -> str | None:
    """ "dark", "bright" or None (in between) for a normalised grey slice's values."""
    values = _sample(np.asarray(normalised, dtype=np.float32))
    values = values[np.isfinite(values)]
    if values.size < 2:
        return None
    median = float(np.median(values))
    spread = float(values.std())
    if spread == 0:
        return None
    skew = float(np.mean(((values - values.mean()) / spread) ** 3))
    if median <= DARK_MEDIAN and skew >= DARK_SKEW:
        return "dark"
    if median >= BRIGHT_MEDIAN and skew <= BRIGHT_SKEW:
        return "bright"
    return None


def training_background(normalised: Iterable[np.ndarray]) -> str | None:
    """The background shared by ``TRAINING_AGREEMENT`` of a new model's training slices, as
    the network sees them (normalised), else None. Colour images give None."""
    found = []
    for image in normalised:
        if np.ndim(image) != 2:
            return None
        found.append(background_of(image))
    for side in BACKGROUNDS:
        if found and found.count(side) >= TRAINING_AGREEMENT * len(found):
            return side
    return None


def _sample(values: np.ndarray) -> np.ndarray:
    """At most about ``STATISTICS_SAMPLE`` of ``values``, evenly strided (flattened)."""
    flat = np.asarray(values).ravel()
    return flat[:: flat.size // STATISTICS_SAMPLE + 1]

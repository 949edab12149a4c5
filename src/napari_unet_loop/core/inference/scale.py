"""Object scale: bring a user's image to the scale a model was trained at, and back.

A network learns objects of the sizes it was shown; nuclei three times larger come out in
pieces. Each model records three numbers about its training images (``model_scale``):
``object_diameter``, the median equivalent diameter of its objects (from the training masks,
for models of objects), ``image_scale``, what :func:`estimate_scale` measures on its
training images (their median), and ``image_peak``, how clearly that measure peaks on them
(:func:`peak_clarity`): images without a characteristic size, as EM slices, are never
rescaled automatically. A user's image is resized by ``factor`` = the model's measure /
the image's before the network, and the result is mapped back to the image's own grid, so
labels always match it. A stack is measured on up to ``STACK_SAMPLES`` slices and their median
taken: the measure varies between slices of one kind (ISBI: 3.4 to 6.7 px).

:func:`estimate_scale` is the characteristic size of the image's structures: the blob diameter
at which the scale-normalised Laplacian of Gaussian responds most (or, where that would
shrink the image, a nearly as strong response nearer the model's measure: ``NEAR_PEAK``). It is
only compared with the same measure on the training images, so it needs no calibration to real
units. A diameter the user gives is compared with ``object_diameter`` instead, and taken as it
is; automatic factors within ``DEAD_BAND`` are 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError

# Automatic factors between these are treated as 1: the measure wobbles (ISBI slices 22-29
# measure half of slices 0-21) and rescaling an image that is nearly right costs accuracy.
# The band is narrower on the shrinking side: objects too large for the network's view come
# out in pieces, while too small ones only lose detail. Measured with the shipped models:
# shrinking from 2/3 instead of 1/2 raised AP@0.5 on the nuclei test images from 0.775 to
# 0.784; enlarging ISBI slices measured at 1.2-2 lowered membrane Dice from 0.799 to 0.787.
DEAD_BAND = (2 / 3, 2.0)
STACK_SAMPLES = 4
# An automatic factor never shrinks a slice below this side: the network needs the context
# (a 120 px blood-cell image shrunk to 30 px loses the cell around its nucleus).
MIN_SIDE = 128
FACTOR_RANGE = (0.1, 10.0)
_SIGMAS = 2.0 ** np.arange(0.0, 6.01, 0.25)  # 1 to 64 px: blob diameters of about 3 to 180 px
_DIAMETERS = 2.0 * np.sqrt(2.0) * _SIGMAS  # a disc's response peaks at σ = diameter / 2√2
_WORK_SIDE = 1024  # larger slices are measured on their central 1024 px square
_PEAK_SPAN = 6  # steps of _SIGMAS: 1.5 octaves
# An automatic factor needs training images with a characteristic size, a curve that peaks.
# EM slices (thin membranes around cells of every size) give a nearly flat one (clarity 0.16
# for ISBI's training slices; 0.42 for nuclei and blood cells), whose maximum jumps with blur,
# noise or gamma: on ISBI, blur (σ 2 px) moved it 4× (auto shrank the slices to 0.25×,
# membrane Dice 0.70 -> 0.18), noise and gamma 2 the other way (enlarged 2.4×, 0.80 -> 0.63
# and 0.79 -> 0.51). Models whose record says so are not rescaled automatically.
MIN_PEAK_CLARITY = 0.25
# Large σ also answer to what spans the image (a tissue, an embryo, uneven light), not only to
# objects. When the strongest response would shrink an image, a peak nearly as strong (this
# share of it) nearer the model's own measure wins: nuclei test images at half size, where
# the whole embryo outweighed its 5 px nuclei, had been shrunk 0.42× (AP@0.5 0.00; 0.43
# at the nearer peak). Enlarging is left alone: on blood-cell images the nearer peak there
# was the wrong one (a 60 px image: nucleus Dice 0.89 -> 0.00).
NEAR_PEAK = 0.95


def grey_slice(image: np.ndarray) -> np.ndarray:
    """One 2D slice, grey or RGB(A), as float32 grey (the mean of its colours)."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 3 and x.shape[-1] in (3, 4):
        x = x[..., :3].mean(axis=-1)
    if x.ndim != 2:
        raise InputError(f"expected one 2D slice (grey or RGB), got shape {np.shape(image)}")
    return x


def central_square(image: np.ndarray, side: float) -> np.ndarray:
    """The central ``side`` x ``side`` crop of a slice (all of it along a shorter axis)."""
    side = int(round(side))
    top, left = (max((n - side) // 2, 0) for n in np.shape(image)[:2])
    return image[top : top + side, left : left + side]


def stretched(x: np.ndarray) -> np.ndarray:
    """``x`` with its 1st and 99.8th percentiles mapped to 0 and 1: its contrast, not its
    brightness or gain."""
    low, high = np.percentile(x, (1, 99.8))
    return (x - low) / max(float(high - low), 1e-6)


def _pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    out = [x]
    for _ in range(levels):
        if min(out[-1].shape) < 16:
            break
        out.append(resize(out[-1], 0.5))
    return out


def response_curve(image: np.ndarray) -> np.ndarray:
    """The scale measure's curve of one slice: for each σ of ``_SIGMAS``, the scale-normalised
    Laplacian of Gaussian σ²|∇²G_σ * I| at its strongest 1 % of pixels (the centres of the
    most salient blobs, not the background). Large σ run on halved images and large slices are
    measured on their centre, so the cost stays that of a few small filters."""
    x = stretched(central_square(grey_slice(image), _WORK_SIDE))
    pyramid = _pyramid(x, 6)
    responses = []
    for sigma in _SIGMAS:
        level = min(max(int(np.floor(np.log2(sigma))) - 1, 0), len(pyramid) - 1)
        part, s = pyramid[level], sigma / 2**level
        response = np.abs(s * s * ndi.gaussian_laplace(part, s, mode="reflect"))
        responses.append(float(np.percentile(response, 99)))
    return np.asarray(responses)


def _peak_diameter(curve: np.ndarray) -> float:
    """2√2 σ at the σ where a response curve peaks (a disc's response peaks there)."""
    return float(_DIAMETERS[int(np.argmax(curve))])


def estimate_scale(image: np.ndarray, model_measure: float | None = None) -> float:
    """Characteristic structure diameter (px) of one slice, about 3 to 180 px: where its
    :func:`response_curve` peaks. With ``model_measure`` (the model's ``image_scale``), a
    strongest peak above it gives way to the nearest peak of at least ``NEAR_PEAK`` of its
    height (see ``NEAR_PEAK``)."""
    curve = response_curve(image)
    strongest = _peak_diameter(curve)
    if model_measure is None or strongest <= model_measure:
        return strongest
    high = curve >= NEAR_PEAK * curve.max()
    rising = np.r_[True, curve[1:] >= curve[:-1]]
    falling = np.r_[curve[:-1] >= curve[1:], True]
    peaks = np.flatnonzero(high & rising & falling)
    return float(min(_DIAMETERS[peaks], key=lambda d: abs(np.log(d / model_measure))))


def peak_clarity(curve: np.ndarray) -> float:
    """How clearly a response curve peaks: 1 − the larger of its values ``_PEAK_SPAN`` either
    side of its maximum (the curve's end where the span runs past it), relative to the
    maximum. 0 is flat; blobs of one size give about 0.4."""
    curve = np.asarray(curve, dtype=float) / max(float(np.max(curve)), 1e-12)
    peak = int(np.argmax(curve))
    left = curve[max(peak - _PEAK_SPAN, 0)]
    right = curve[min(peak + _PEAK_SPAN, len(curve) - 1)]
    return float(1.0 - max(left, right))


def labelled_diameter(labels: np.ndarray, background: int = 0) -> float | None:
    """Median equivalent diameter (px) of the connected objects of ``labels`` (2D or stack).

    Objects are the 4-connected regions of each class other than ``background`` (values < 0,
    unlabelled pixels, are left out); None when there is none of at least 9 px.
    """
    labels = np.asarray(labels)
    planes = labels.reshape(-1, *labels.shape[-2:])
    areas: list[int] = []
    for plane in planes:
        for value in np.unique(plane):
            if value == background or value < 0:
                continue
            regions, count = ndi.label(plane == value)
            if count:
                sizes = np.bincount(regions.ravel())[1:]
                areas.extend(int(a) for a in sizes if a >= 9)
    if not areas:
        return None
    return float(2.0 * np.sqrt(np.median(areas) / np.pi))


def scale_factor(
    model_size: float | None, image_size: float | None, *, dead_band: bool = True
) -> float:
    """Resize factor for the image: model size / image size (1 inside ``DEAD_BAND``)."""
    if not model_size or not image_size:
        return 1.0
    factor = float(np.clip(model_size / image_size, *FACTOR_RANGE))
    low, high = DEAD_BAND
    return 1.0 if dead_band and low <= factor <= high else factor


def model_scale(provenance: dict) -> dict:
    """The ``scale`` record of a model's provenance: ``object_diameter``, ``image_scale`` and
    ``image_peak`` (the :func:`peak_clarity` of its training images' curves).

    A value that is not a positive finite number (a hostile or damaged file) is left out, as
    in files older than the record: such a model is not rescaled automatically.
    """
    record = provenance.get("scale")
    if not isinstance(record, dict):
        return {}
    return {
        key: float(value)
        for key, value in record.items()
        if key in ("object_diameter", "image_scale", "image_peak")
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and np.isfinite(value)
        and (value >= 0 if key == "image_peak" else value > 0)  # a clarity may be 0: flat
    }


def record_scale(
    provenance: dict, images: Iterable[np.ndarray], labels: Iterable[np.ndarray] | None
) -> dict:
    """Measure training images (and masks) and store the ``scale`` record in ``provenance``."""
    curves = [response_curve(image) for image in images]
    scales = [_peak_diameter(c) for c in curves]
    typical = np.median([c / max(float(c.max()), 1e-12) for c in curves], axis=0)
    record: dict = {
        "image_scale": round(float(np.median(scales)), 2),
        "image_peak": round(peak_clarity(typical), 3),
    }
    if labels is not None:
        diameters = [d for d in (labelled_diameter(label) for label in labels) if d]
        if diameters:
            record["object_diameter"] = round(float(np.median(diameters)), 2)
    provenance["scale"] = record
    return record


def measurable(record: dict) -> bool:
    """Whether a model's training images had a size the automatic scale can match (see
    ``MIN_PEAK_CLARITY``); a record from before ``image_peak`` was kept counts as one."""
    return record.get("image_peak", 1.0) >= MIN_PEAK_CLARITY


def automatic_factor(
    provenance: dict, slices: Sequence[np.ndarray], diameter: float | None = None
) -> float:
    """The factor to segment a stack (its 2D ``slices``, grey or RGB) with.

    From the user's object ``diameter`` when given (needs the model's ``object_diameter``),
    else from :func:`estimate_scale` on up to ``STACK_SAMPLES`` slices spread over the stack,
    for models whose training images are :func:`measurable`. An automatic factor never shrinks
    slices below ``MIN_SIDE``.
    """
    record = model_scale(provenance)
    if diameter is not None:
        if not (np.isfinite(diameter) and diameter > 0):
            raise InputError(f"object diameter must be a positive number, got {diameter}")
        if "object_diameter" not in record:
            raise InputError("this model records no object size: leave the diameter on auto")
        return scale_factor(record["object_diameter"], diameter, dead_band=False)
    if "image_scale" not in record or not len(slices) or not measurable(record):
        return 1.0
    picks = np.unique(np.linspace(0, len(slices) - 1, STACK_SAMPLES).round().astype(int))
    own = record["image_scale"]
    measured = float(np.median([estimate_scale(np.asarray(slices[int(i)]), own) for i in picks]))
    factor = scale_factor(own, measured)
    side = min(np.shape(slices[0])[:2])
    if factor < 1.0 and side * factor < MIN_SIDE:
        factor = min(MIN_SIDE / side, 1.0)
        return 1.0 if factor >= DEAD_BAND[0] else factor
    return factor


def resize(array: np.ndarray, factor: float, *, order: int = 1) -> np.ndarray:
    """``array`` (Y, X) or (Y, X, C) resized by ``factor`` (order 1: bilinear; 0: nearest)."""
    array = np.asarray(array)
    shape = tuple(max(int(round(n * factor)), 1) for n in array.shape[:2])
    return resize_to(array, shape, order=order)


def resize_to(array: np.ndarray, shape: tuple[int, int], *, order: int = 1) -> np.ndarray:
    """``array`` (Y, X) or (Y, X, C) resampled to ``shape`` on pixel centres.

    Bilinear (order 1) keeps float32; nearest (order 0) keeps the dtype, for labels.
    """
    array = np.asarray(array)
    if tuple(array.shape[:2]) == tuple(shape):
        return array
    coords = [
        (np.arange(n, dtype=np.float32) + 0.5) * (source / n) - 0.5
        for n, source in zip(shape, array.shape[:2], strict=True)
    ]
    if order == 0:
        rows = np.clip(np.floor(coords[0] + 0.5).astype(np.intp), 0, array.shape[0] - 1)
        cols = np.clip(np.floor(coords[1] + 0.5).astype(np.intp), 0, array.shape[1] - 1)
        return array[np.ix_(rows, cols)]
    x = array.astype(np.float32, copy=False)
    if shape[0] < array.shape[0] or shape[1] < array.shape[1]:
        # Shrinking: smooth first so small structures average instead of aliasing.
        sigma = [max(s / n - 1.0, 0.0) / 2.0 for s, n in zip(array.shape[:2], shape, strict=True)]
        x = ndi.gaussian_filter(x, sigma + [0.0] * (x.ndim - 2))
    out = x
    for axis, c in enumerate(coords):
        low = np.clip(np.floor(c).astype(np.intp), 0, array.shape[axis] - 1)
        high = np.clip(low + 1, 0, array.shape[axis] - 1)
        frac = np.clip(c - low, 0.0, 1.0).reshape((-1,) + (1,) * (x.ndim - axis - 1))
        out = np.take(out, low, axis=axis) * (1 - frac) + np.take(out, high, axis=axis) * frac
    return out.astype(np.float32)

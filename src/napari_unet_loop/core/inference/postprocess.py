"""Turn network output into class maps and instance labels, and clean them up.

Everything works on 2D images, and on (Z, Y, X) stacks one 2D slice at a time: the network sees
single slices, and EM stacks are too anisotropic to join objects across slices. Connected
components use 4-connectivity, so objects touching only at a corner stay apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import gaussian
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from ..errors import InputError

METHODS = ("watershed", "components")

# Chosen on the nuclei validation ids (recipes/splits/nuclei-val.txt) with the shipped model:
# AP@0.5 0.677 at h = 2, 0.728 at 0.75, 0.741 at 0.5, 0.735 at 0.25 (more false splits).
DEFAULT_H = 0.5
DEFAULT_MIN_SIZE = 16

KINDS = ("instances", "classes")


def probabilities_to_classes(probs: np.ndarray) -> np.ndarray:
    """Class map (uint8) from probabilities of shape (C, Y, X) or (C, Z, Y, X): argmax over C."""
    probs = np.asarray(probs)
    if probs.ndim not in (3, 4):
        raise InputError(
            f"probabilities must have shape (C, Y, X) or (C, Z, Y, X), got {probs.shape}"
        )
    if not 1 <= probs.shape[0] <= 256:
        raise InputError(f"cannot store {probs.shape[0]} classes in a uint8 class map")
    return np.argmax(probs, axis=0).astype(np.uint8)


def _slices(array: np.ndarray) -> list[np.ndarray]:
    """Views of the 2D slices of a 2D image or a (Z, Y, X) stack."""
    if array.ndim == 2:
        return [array]
    if array.ndim == 3:
        return list(array)
    raise InputError(f"expected a 2D image or a (Z, Y, X) stack, got shape {array.shape}")


def _relabel_keeping(labels: np.ndarray, min_size: int) -> np.ndarray:
    """int32 labels 1..N (in order of the old ids) of the objects with >= min_size pixels."""
    ids, inverse, sizes = np.unique(labels.ravel(), return_inverse=True, return_counts=True)
    keep = (ids != 0) & (sizes >= min_size)
    new_ids = np.where(keep, np.cumsum(keep), 0).astype(np.int32)
    return new_ids[inverse].reshape(labels.shape)


def remove_small_objects(
    labels: np.ndarray, min_size: int, *, kind: str = "instances"
) -> np.ndarray:
    """Remove objects with fewer than ``min_size`` pixels.

    ``kind="instances"``: ``labels`` are instance ids (0 = background); an object's size is its
    pixel count over the whole array, small ones become 0, and the rest are relabelled
    1..N consecutively in order of their old ids (int32).

    ``kind="classes"``: ``labels`` is a class map (0 = background); per 2D slice, connected
    regions of any class other than 0 smaller than ``min_size`` are set to 0 (the same dtype
    is returned). Holes of background inside objects are left alone.
    """
    labels = np.asarray(labels)
    if kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
    if labels.dtype.kind not in "biu":
        raise InputError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError("labels must not be negative")
    if kind == "instances":
        return _relabel_keeping(labels, min_size)
    out = labels.copy()
    for plane in _slices(out):
        for value in np.unique(plane):
            if value == 0:
                continue
            regions, _ = ndi.label(plane == value)
            sizes = np.bincount(regions.ravel())
            small = sizes < min_size
            small[0] = False
            plane[small[regions]] = 0
    return out


def _seeds(relief: np.ndarray, mask: np.ndarray, h: float) -> np.ndarray:
    """Labelled h-maxima of ``relief``, one connected component of ``mask`` at a time."""
    # Whole 1/100 pixels: float noise on a flat ridge would otherwise make several maxima.
    steps = np.round(relief * 100).astype(np.int32)
    h_steps = max(int(round(h * 100)), 1)
    components, _ = ndi.label(mask)
    seeds = np.zeros(mask.shape, dtype=bool)
    # Small crops instead of the whole slice: the reconstruction is several times faster.
    for i, box in enumerate(ndi.find_objects(components), start=1):
        inside = components[box] == i
        crop = np.pad(np.where(inside, steps[box], 0), 1)
        seeds[box] |= h_maxima(crop, h_steps)[1:-1, 1:-1].astype(bool) & inside
    return ndi.label(seeds)[0]


def _split_touching(mask: np.ndarray, foreground_prob: np.ndarray | None, h: float) -> np.ndarray:
    """Watershed of one 2D mask: one seed per salient maximum of the distance transform."""
    relief = ndi.distance_transform_edt(mask)
    if foreground_prob is not None:
        # Networks are unsure where objects touch; the dip deepens the neck between them.
        relief = relief * foreground_prob
    relief = gaussian(relief, sigma=1.0, preserve_range=True)
    labels = watershed(-relief, _seeds(relief, mask, h), mask=mask)
    # Objects too thin to hold a seed of height h still become objects of their own.
    leftover, _ = ndi.label(mask & (labels == 0))
    labels[leftover > 0] = leftover[leftover > 0] + labels.max()
    return labels


def instance_labels(
    classes: np.ndarray,
    foreground: Sequence[int] = (1,),
    method: str = "watershed",
    min_size: int = DEFAULT_MIN_SIZE,
    probabilities: np.ndarray | None = None,
    *,
    h: float = DEFAULT_H,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Instance labels (int32, 0 = background) of the pixels whose class is in ``foreground``.

    ``method="components"``: each 4-connected region is one object. ``method="watershed"``:
    touching objects are split by a watershed of the distance transform (distance of each
    pixel to the background, smoothed with a Gaussian of sigma 1), seeded at its h-maxima: two
    maxima become separate objects when the dip between them is at least ``h`` pixels deep.
    ``probabilities`` (C, *spatial), if given, are summed over the ``foreground`` classes and
    multiplied into the distance transform, so a low foreground probability where objects touch
    helps to split them (``h`` is then in pixels times probability).

    Objects smaller than ``min_size`` pixels are removed. Stacks are labelled slice by slice;
    ids are 1..N, unique over the whole stack, and an object is never linked across slices.
    ``progress(done_slices, total_slices)`` is called after each slice.
    """
    classes = np.asarray(classes)
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if not foreground:
        raise InputError("name at least one foreground class")
    mask = np.isin(classes, list(foreground))
    if probabilities is not None:
        probabilities = np.asarray(probabilities)
        if probabilities.shape[1:] != classes.shape:
            raise InputError(
                f"probabilities shape {probabilities.shape} does not match class map shape "
                f"{classes.shape} (expected (C, *spatial))"
            )
        if max(foreground) >= probabilities.shape[0]:
            raise InputError(
                f"foreground class {max(foreground)} is missing from the "
                f"{probabilities.shape[0]} probability channels"
            )
        foreground_prob = probabilities[list(foreground)].sum(axis=0)
    out = np.zeros(classes.shape, dtype=np.int32)
    planes = _slices(mask)
    out_planes = _slices(out)
    prob_planes = _slices(foreground_prob) if probabilities is not None else [None] * len(planes)
    offset = 0
    for z, (plane, prob, target) in enumerate(zip(planes, prob_planes, out_planes, strict=True)):
        if method == "components":
            labels, _ = ndi.label(plane)
        else:
            labels = _split_touching(plane, prob, h)
        labels = _relabel_keeping(labels, min_size)
        target[...] = np.where(labels > 0, labels + offset, 0)
        offset += int(labels.max())
        if progress is not None:
            progress(z + 1, len(planes))
    return out


def instance_options(factor: float = 1.0) -> dict:
    """Watershed depth and minimum object size for a result segmented at ``factor``.

    Both were chosen for objects at the model's own scale; on the image's grid objects are
    1 / ``factor`` times as wide (see ``core.inference.scale``), so depths (in pixels) scale by that
    and areas by its square.
    """
    return {"h": DEFAULT_H / factor, "min_size": max(int(round(DEFAULT_MIN_SIZE / factor**2)), 1)}


class StackInstances:
    """Instance labels of a stack, one slice at a time, with ids unique over the whole stack.

    Segment, Batch and the CLI all number instances through this, so a stack never repeats
    the ids of an earlier slice. ``factor`` is the scale the slices were segmented at.
    """

    def __init__(self, num_classes: int, factor: float = 1.0) -> None:
        self.foreground = tuple(range(1, num_classes))
        self.options = instance_options(factor)
        self.offset = 0

    def __call__(self, classes: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray:
        plane = instance_labels(
            classes, foreground=self.foreground, probabilities=probabilities, **self.options
        )
        plane[plane > 0] += self.offset
        self.offset = max(self.offset, int(plane.max()))
        return plane

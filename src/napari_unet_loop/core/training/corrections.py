"""Painted corrections: autosaved to disk slice by slice, and turned into training pairs.

Each corrected slice is one compressed ``slice_0003.npz`` (the slice's labels and the mask of
pixels the user painted), written to a temporary file and renamed into place, so a crash or a
closed viewer never leaves a half-written file and loses at most the last unsaved stroke.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..evaluation.labelmap import check_class_indices
from ..io.atomic import atomic_output

SUFFIX = ".unet-loop-corrections"
_SLICE_FILE = re.compile(r"slice_(\d+)\.npz$")


def default_folder(image_path: str | os.PathLike) -> Path:
    """The folder beside an image file: ``cells.tif`` → ``cells.unet-loop-corrections``."""
    path = Path(image_path)
    return path.with_name(path.stem + SUFFIX)


def home_folder(name: str, fingerprint: str = "") -> Path:
    """A corrections folder under the user's home, for images that have no file.

    ``fingerprint`` (see :func:`image_fingerprint`) keeps two different images that share a
    layer name (e.g. "Image") from picking up each other's corrections.
    """
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "image"
    if fingerprint:
        safe = f"{safe}-{fingerprint}"
    return Path.home() / ".napari-unet-loop" / "corrections" / safe


def image_fingerprint(image) -> str:
    """A short hash of an image's shape, dtype and first slice (cheap even for a lazy stack)."""
    first = np.ascontiguousarray(image[0] if np.ndim(image) > 2 else image)
    digest = hashlib.sha1(f"{tuple(image.shape)}{image.dtype}".encode())
    digest.update(first.tobytes())
    return digest.hexdigest()[:10]


class CorrectionStore:
    """The saved corrections of one image: ``save`` per slice as the user paints, ``load`` all."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path(self, z: int) -> Path:
        return self.folder / f"slice_{int(z):04d}.npz"

    def save(self, z: int, labels: np.ndarray, painted_mask: np.ndarray) -> Path:
        """Write slice ``z`` atomically (temporary file, then rename)."""
        labels, painted_mask = np.asarray(labels), np.asarray(painted_mask, dtype=bool)
        if labels.shape != painted_mask.shape:
            raise ValueError(f"labels {labels.shape} and mask {painted_mask.shape} differ")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(z)
        with atomic_output(target) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, labels=labels, mask=painted_mask)
        return target

    def remove(self, z: int) -> None:
        self.path(z).unlink(missing_ok=True)

    def load(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """All saved slices: ``{z: (labels, painted_mask)}`` (empty if the folder is missing)."""
        found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.iterdir()):
            match = _SLICE_FILE.match(path.name)
            if not match:
                continue
            try:
                with np.load(path) as data:
                    found[int(match.group(1))] = (data["labels"], data["mask"].astype(bool))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                raise InputError(f"{path}: not a readable corrections file ({exc})") from None
        return found


def training_pairs(
    image,
    labels: np.ndarray,
    slices: list[int],
    *,
    num_classes: int,
    painted: dict[int, np.ndarray] | None = None,
    sparse: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Training images and int16 label slices from the corrected ``slices`` of a stack.

    ``labels`` is (Z,Y,X) or, for a single 2D image, (Y,X) (its only slice is 0); ``image``
    is the matching stack-like ((Z,Y,X), (Z,Y,X,3), (Y,X) or (Y,X,3)). Dense mode takes every
    pixel of an edited slice as truth; sparse mode only the ``painted`` pixels, the rest
    become ``IGNORE_INDEX`` so the loss skips them.
    """
    from .train import IGNORE_INDEX

    if not slices:
        raise InputError("no edited slices: paint corrections on at least one slice first")
    single = labels.ndim == 2
    spatial = image.shape[:2] if single else image.shape[:3]
    if tuple(spatial) != tuple(labels.shape):
        raise InputError(
            f"image {tuple(image.shape)} and labels {tuple(labels.shape)} do not match in shape"
        )
    painted = painted or {}
    images, targets = [], []
    for z in slices:
        if not (z == 0 if single else 0 <= z < labels.shape[0]):
            raise InputError(f"slice {z} is out of range")
        lab = np.asarray(labels if single else labels[z])
        mask = painted.get(z) if sparse else None
        if sparse and (mask is None or not mask.any()):
            continue
        check_class_indices(lab if mask is None else lab[mask], num_classes, f"slice {z}")
        target = lab.astype(np.int16)
        if mask is not None:
            target[~mask] = IGNORE_INDEX
        images.append(np.asarray(image if single else image[z]))
        targets.append(target)
    if not targets:
        raise InputError("sparse mode needs painted pixels, and no edited slice has any")
    return images, targets

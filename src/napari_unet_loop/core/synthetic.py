"""Seeded synthetic microscopy stacks with exact ground truth, for tests, sample data and demos.

``make_membrane_stack`` imitates serial-section EM (ISBI 2012 style): cells are slices through a
3D tessellation of cells of varied size, so neighbouring slices show slowly changing cells,
separated by dark membranes of ISBI's width, with textured interiors, dark organelles, blur
and noise.
``make_nuclei_stack`` imitates fluorescence nuclei: bright ellipsoids of varying brightness on a
dark background, some in touching pairs, with blur and noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

# Membrane stack, in pixels, matched to ISBI 2012 (4 nm pixels): cell profiles of 13-67 px
# (10th-90th percentile, median 29; here 9-61, median 30), membranes labelled 5 px wide
# (twice the median distance to their edge on the centre line, less one), their darkening
# falling to half about 3 px from the centre line, as in ISBI.
_CELL_SIZE = 40.0
_CELL_SPREAD = 0.45  # log-normal spread of the cells' sizes: thin axons beside wide dendrites
_SLICE_STEP = 4.0  # distance between slices in pixel units: cells change slowly along Z
_WARP = 3.0  # amplitude of the smooth warp that makes membranes wavy instead of straight
_MEMBRANE_REACH = 2.0  # labelled: within this distance of the 2 px band where cells meet
_MEMBRANE_SIGMA = 2.0  # Gaussian width of the image's dark membrane profile

# Nuclei stack: semi-axes of the ellipses, in pixels.
_NUCLEUS_AXES = (6.0, 13.0)


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be (Z, Y, X) with positive sizes, got {shape}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / np.float32(max(float(field.std()), 1e-6))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _power_cells(rng: np.random.Generator, zyx: tuple[int, int, int]) -> np.ndarray:
    """Cell index per pixel: a power diagram of random 3D seeds, sampled on warped slice planes.

    Each seed has a weight (its squared radius); the cell of a point is the seed with the least
    ``distance² - weight``, so cells differ in size as axons and dendrites do. A fourth
    coordinate ``sqrt(max weight - weight)`` turns that into a nearest-neighbour query.
    """
    z, y, x = zyx
    margin = 2 * _CELL_SIZE
    depth = (z - 1) * _SLICE_STEP
    extent = np.array([depth + 2 * margin, y + 2 * margin, x + 2 * margin])
    count = max(int(np.prod(extent) / _CELL_SIZE**3 * 1.4), 4)
    seeds = rng.uniform(0.0, 1.0, (count, 3)) * extent - margin
    radius = 0.5 * _CELL_SIZE * rng.lognormal(0.0, _CELL_SPREAD, count)
    weight = radius**2
    lift = np.sqrt(weight.max() - weight)[:, None]
    warp = [_WARP * _smooth_noise(rng, (z, y, x), (1.0, 10.0, 10.0)) for _ in range(2)]
    zz, yy, xx = np.meshgrid(
        np.arange(z, dtype=np.float32) * _SLICE_STEP,
        np.arange(y, dtype=np.float32),
        np.arange(x, dtype=np.float32),
        indexing="ij",
    )
    points = np.stack([zz, yy + warp[0], xx + warp[1], np.zeros_like(zz)], axis=-1)
    _, nearest = cKDTree(np.hstack([seeds, lift])).query(points.reshape(-1, 4), workers=-1)
    return nearest.reshape(z, y, x)


def _boundary_distance(cells: np.ndarray) -> np.ndarray:
    """Per slice, each pixel's distance to the 2 px line where two cells meet (0 on it)."""
    edge = np.zeros(cells.shape, dtype=bool)
    diff_y = cells[:, 1:, :] != cells[:, :-1, :]
    diff_x = cells[:, :, 1:] != cells[:, :, :-1]
    edge[:, 1:, :] |= diff_y
    edge[:, :-1, :] |= diff_y
    edge[:, :, 1:] |= diff_x
    edge[:, :, :-1] |= diff_x
    distance = np.full(cells.shape, np.inf, dtype=np.float32)
    for index, plane in enumerate(edge):
        if plane.any():
            distance[index] = ndimage.distance_transform_edt(~plane)
    return distance


def make_membrane_stack(
    shape: tuple[int, int, int] = (4, 256, 256), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """An EM-like serial-section stack and its membrane mask.

    Returns ``(image, labels)``: ``image`` uint8 (Z, Y, X) with bright textured cells and dark
    membranes; ``labels`` uint8 (Z, Y, X) with 0 = cell interior and 1 = membrane, labelled
    about 5 px wide as in ISBI 2012.
    """
    zyx = _check_shape(shape)
    rng = np.random.default_rng(seed)
    cells = _power_cells(rng, zyx)
    distance = _boundary_distance(cells)
    membrane = distance <= _MEMBRANE_REACH

    # Each cell has its own grey level; the texture varies along Z too (sigma 1 slice).
    cell_level = rng.uniform(140.0, 190.0, cells.max() + 1).astype(np.float32)
    image = cell_level[cells]
    image += 14.0 * _smooth_noise(rng, zyx, (0.7, 2.0, 2.0))
    image += 8.0 * _smooth_noise(rng, zyx, (0.0, 0.8, 0.8))

    # Dark organelles (vesicles, mitochondria) inside cells: plausible confusers for membranes.
    blobs = _smooth_noise(rng, zyx, (0.8, 3.0, 3.0)) > 2.0
    image[blobs & ~membrane] -= 50.0

    # Membranes darken the image with a soft profile; some are fainter (cut obliquely).
    strength = np.clip(1.0 + 0.15 * _smooth_noise(rng, zyx, (1.0, 12.0, 12.0)), 0.6, 1.2)
    profile = np.exp(-0.5 * (distance / _MEMBRANE_SIGMA) ** 2)
    image -= (image - rng.uniform(60.0, 85.0)) * strength * profile
    image = ndimage.gaussian_filter(image, (0.0, 0.9, 0.9))
    image += 12.0 * rng.standard_normal(zyx).astype(np.float32)
    return _to_uint8(image), membrane.astype(np.uint8)


def _place_nuclei(rng: np.random.Generator, z: int, y: int, x: int) -> list[tuple]:
    """Ellipsoids (zc, yc, xc, rz, a, b, angle, brightness): mostly apart, some touching pairs."""
    mean_area = np.pi * np.mean(_NUCLEUS_AXES) ** 2 * 0.8
    target = max(int(0.25 * y * x / mean_area), 1)
    nuclei: list[tuple] = []
    for _ in range(target * 20):
        if len(nuclei) >= target:
            break
        a, b = sorted(rng.uniform(*_NUCLEUS_AXES, 2), reverse=True)
        angle = rng.uniform(0.0, np.pi)
        rz = rng.uniform(2.0, 5.0)
        zc = rng.uniform(0.0, max(z - 1, 0))
        brightness = rng.uniform(90.0, 230.0)
        touching = nuclei and rng.random() < 0.25
        if touching:
            # Overlap a neighbour slightly; the overlap goes to the neighbour, so they touch.
            first = nuclei[rng.integers(len(nuclei))]
            direction = rng.uniform(0.0, 2 * np.pi)
            reach = first[4] * 0.8 + a * 0.8
            yc = first[1] + reach * np.sin(direction)
            xc = first[2] + reach * np.cos(direction)
            zc = first[0]
        else:
            yc, xc = rng.uniform(0.0, y), rng.uniform(0.0, x)
        if not (0 <= yc < y and 0 <= xc < x):
            continue
        gap = 0.0 if touching else 2.0
        clash = any(
            np.hypot(yc - n[1], xc - n[2]) < (0.85 * (a + n[4]) if touching else a + n[4] + gap)
            and abs(zc - n[0]) < rz + n[3]
            for n in nuclei
            if not (touching and n is first)
        )
        if not clash:
            nuclei.append((zc, yc, xc, rz, a, b, angle, brightness))
    return nuclei


def make_nuclei_stack(
    shape: tuple[int, int, int] = (4, 256, 256), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A fluorescence-like nuclei stack and its instance labels.

    Returns ``(image, labels)``: ``image`` uint8 (Z, Y, X) with bright nuclei on a dark
    background; ``labels`` uint16 (Z, Y, X) with 0 = background and one id per nucleus, the same
    id in every slice the nucleus crosses.
    """
    z, y, x = _check_shape(shape)
    rng = np.random.default_rng(seed)
    nuclei = _place_nuclei(rng, z, y, x)
    labels = np.zeros((z, y, x), dtype=np.uint16)
    brightness = np.zeros((z, y, x), dtype=np.float32)
    for index, (zc, yc, xc, rz, a, b, angle, level) in enumerate(nuclei, start=1):
        top, bottom = int(max(yc - a - 1, 0)), int(min(yc + a + 2, y))
        left, right = int(max(xc - a - 1, 0)), int(min(xc + a + 2, x))
        yy, xx = np.mgrid[top:bottom, left:right].astype(np.float32)
        dy, dx = yy - yc, xx - xc
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        radius2 = (u / a) ** 2 + (v / b) ** 2
        for zi in range(z):
            # Cross-section of the ellipsoid: shrinks away from its centre slice.
            scale2 = 1.0 - ((zi - zc) / rz) ** 2
            if scale2 < 0.15:
                continue
            inside = (radius2 <= scale2) & (labels[zi, top:bottom, left:right] == 0)
            labels[zi, top:bottom, left:right][inside] = index
            brightness[zi, top:bottom, left:right][inside] = level * (0.6 + 0.4 * scale2)

    zyx = (z, y, x)
    # Chromatin texture modulates the nuclei; blur makes soft edges, noise is shot-like.
    texture = 1.0 + 0.15 * _smooth_noise(rng, zyx, (0.0, 1.5, 1.5))
    image = 12.0 + 4.0 * _smooth_noise(rng, zyx, (0.0, 20.0, 20.0)) + brightness * texture
    image = ndimage.gaussian_filter(image, (0.0, 1.2, 1.2))
    image = rng.poisson(np.clip(image, 0.0, None) / 2.0).astype(np.float32) * 2.0
    image += 3.0 * rng.standard_normal(zyx).astype(np.float32)
    return _to_uint8(image), labels

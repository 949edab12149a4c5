"""The situations the correction-loop benchmark puts a user in, built from ../shared/data.

Each scenario is a list of images as a user would open them (grey or colour), their true
classes (and object ids where objects matter), the images a user may correct (all of them
are scored when not corrected) and the model the user starts from (None: a new network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import BenchmarkError, load_isbi, load_nuclei, load_wbc, model_path, split_ids
from scipy import ndimage as ndi

from napari_unet_loop.core.inference.scale import resize
from napari_unet_loop.core.model.modelfile import Model, load_model, new_model

WBC_NUCLEUS_MAP = "255:1,*:0"  # nucleus vs cytoplasm, red cells and background
EM_HELD_OUT = list(range(22, 30))  # em-membranes never trained on these (22-23 chose weights)
LARGE_FACTOR = 3.0
LARGE_IMAGES = 16


@dataclass
class Scenario:
    key: str
    description: str
    images: list[np.ndarray]
    truth: list[np.ndarray]
    class_names: list[str]
    names: list[str]
    base: Model | None
    objects: list[np.ndarray] | None = None  # true instance ids, when AP@0.5 is reported
    max_k: int = 8
    stack: bool = False  # slices of one stack (one scale for all), else separate images

    @property
    def foreground(self) -> str:
        return self.class_names[1]


def _components(classes: np.ndarray) -> np.ndarray:
    return ndi.label(classes == 1)[0]


def em_in_domain(data: Path, model_dir: Path | None, quick: bool) -> Scenario:
    volume, truth = load_isbi(data)
    slices = EM_HELD_OUT[:4] if quick else EM_HELD_OUT
    crop = np.s_[:128, :128] if quick else np.s_[:, :]
    return Scenario(
        "a",
        "shipped em-membranes on ISBI slices it never trained on (22-29)",
        [volume[z][crop] for z in slices],
        [truth[z][crop] for z in slices],
        ["interior", "membrane"],
        [f"slice {z}" for z in slices],
        load_model(model_path("em-membranes", model_dir)),
        max_k=2 if quick else 4,
        stack=True,
    )


def _wbc_images(data: Path, dataset: str, shape: tuple[int, int] | None, count: int) -> list:
    chosen = []
    for name in split_ids("wbc-test"):
        if not name.startswith(f"{dataset}/"):
            continue
        (sample,) = load_wbc(data, [name], WBC_NUCLEUS_MAP)
        if shape is None or sample.image.shape[:2] == shape:
            chosen.append(sample)
        if len(chosen) == count:
            break
    if len(chosen) < count:
        raise BenchmarkError(f"only {len(chosen)} wbc test images in {dataset}")
    return chosen


def wbc_grey(data: Path, model_dir: Path | None, quick: bool) -> Scenario:
    """Cross-domain: the fluorescence nuclei model on brightfield blood-cell nuclei, in grey."""
    samples = _wbc_images(data, "dataset1", (120, 120), 6 if quick else 24)
    grey = [s.image[..., :3].astype(np.float32).mean(axis=-1) for s in samples]
    return Scenario(
        "b",
        "shipped nuclei model on grey WBC images (dataset 1 test split; nucleus vs rest)",
        grey,
        [s.classes for s in samples],
        ["background", "nucleus"],
        [s.name for s in samples],
        load_model(model_path("nuclei", model_dir)),
        objects=[_components(s.classes) for s in samples],
        max_k=2 if quick else 8,
    )


def wbc_colour(data: Path, model_dir: Path | None, quick: bool) -> Scenario:
    """Colour images with a one-channel model: Segment and Retrain both turn them grey."""
    samples = _wbc_images(data, "dataset2", None, 6 if quick else 18)
    images = [s.image[..., :3] for s in samples]
    if quick:
        images = [i[:128, :128] for i in images]
        samples = [type(s)(s.name, s.image, s.classes[:128, :128]) for s in samples]
    return Scenario(
        "c",
        "shipped nuclei model on RGB WBC images (dataset 2 test split; nucleus vs rest)",
        images,
        [s.classes for s in samples],
        ["background", "nucleus"],
        [s.name for s in samples],
        load_model(model_path("nuclei", model_dir)),
        objects=[_components(s.classes) for s in samples],
        max_k=2 if quick else 8,
    )


def large_nuclei(data: Path, model_dir: Path | None, quick: bool) -> Scenario:
    """Nuclei three times larger than the model's training nuclei: test images upscaled 3×."""
    wanted = 4 if quick else LARGE_IMAGES
    samples = [
        s
        for s in load_nuclei(data, split_ids("nuclei-test"))
        if s.image.shape[:2] == (256, 256) and s.image.ndim == 2
    ][:wanted]
    if len(samples) < wanted:
        raise BenchmarkError(f"only {len(samples)} grey 256² nuclei test images")
    factor = 1.0 if quick else LARGE_FACTOR
    crop = np.s_[:128, :128] if quick else np.s_[:, :]
    images = [resize(s.image, factor)[crop] for s in samples]
    objects = [resize(s.instances, factor, order=0)[crop] for s in samples]
    return Scenario(
        "d",
        f"shipped nuclei model on nuclei test images upscaled {factor:g}× "
        f"({256 * factor:g}² px, objects {factor:g}× the training size)",
        images,
        [(o > 0).astype(np.uint8) for o in objects],
        ["background", "nucleus"],
        [s.name for s in samples],
        load_model(model_path("nuclei", model_dir)),
        objects=objects,
        max_k=2 if quick else 8,
    )


def em_scratch(data: Path, model_dir: Path | None, quick: bool) -> Scenario:
    volume, truth = load_isbi(data)
    count = 6 if quick else 30
    crop = np.s_[:128, :128] if quick else np.s_[:, :]
    return Scenario(
        "e",
        "a new network (default architecture) trained on the k corrected ISBI slices",
        [volume[z][crop] for z in range(count)],
        [truth[z][crop] for z in range(count)],
        ["interior", "membrane"],
        [f"slice {z}" for z in range(count)],
        None,
        max_k=2 if quick else 8,
        stack=True,
    )


SCENARIOS: dict[str, Callable[[Path, Path | None, bool], Scenario]] = {
    "a": em_in_domain,
    "b": wbc_grey,
    "c": wbc_colour,
    "d": large_nuclei,
    "e": em_scratch,
}


def start_model(scenario: Scenario) -> Model:
    """The model a round starts from: the scenario's, or a new network for its classes."""
    if scenario.base is not None:
        return scenario.base
    channels = 3 if scenario.images[0].ndim == 3 else 1
    return new_model(scenario.class_names, in_channels=channels, name="scratch")

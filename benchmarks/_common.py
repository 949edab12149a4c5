"""What the benchmark scripts share: data and model lookup, loading, scoring, tables, results.

Labels become classes by the same label maps the training recipes use (``recipes/*.sh``), so
the benchmarks score exactly the classes the shipped models were trained on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

import napari_unet_loop
from napari_unet_loop.core.evaluation.labelmap import parse_label_map
from napari_unet_loop.core.evaluation.metrics import ConfusionCounts, confusion_counts
from napari_unet_loop.core.io.atomic import atomic_output
from napari_unet_loop.core.io.read import read_image
from napari_unet_loop.core.model.precision import bf16_supported, cpu_model
from napari_unet_loop.core.model.registry import SUFFIX, shipped_models

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
SPLITS = REPO / "recipes" / "splits"

# The recipes' label maps: ISBI 255 = cell interior (class 0), 0 = membrane (class 1); nuclei
# instance ids → nucleus; wbc 128 = cytoplasm, 255 = nucleus, stray values → background.
ISBI_MAP = "255:0,0:1"
NUCLEI_MAP = "0:0,*:1"
WBC_MAP = "0:0,128:1,255:2,*:0"

ISBI_IMAGES = "isbi2012/train-volume.tif"
ISBI_LABELS = "isbi2012/train-labels.tif"


class BenchmarkError(Exception):
    """A problem the person running a benchmark can fix (missing data or model, bad option)."""


@dataclass
class Sample:
    """One held-out image: its name, pixels, true classes and (for nuclei) true instances."""

    name: str
    image: np.ndarray
    classes: np.ndarray
    instances: np.ndarray | None = None


def require(data: Path, *relative: str) -> None:
    """Stop with one clear line when a data file or folder the run needs is absent."""
    for rel in relative:
        if not (data / rel).exists():
            raise BenchmarkError(
                f"data not found: {data / rel} (pass --data DIR, the folder holding "
                "isbi2012/, nuclei/ and wbc/)"
            )


def split_ids(name: str) -> list[str]:
    """Image names of a fixed split, e.g. ``split_ids("nuclei-test")``."""
    path = SPLITS / f"{name}.txt"
    if not path.is_file():
        raise BenchmarkError(f"split file missing: recipes/splits/{name}.txt")
    return path.read_text().split()


def classes(labels: np.ndarray, label_map: str) -> np.ndarray:
    """Class indices (uint8) of raw labels under one of the recipes' label maps."""
    return parse_label_map(label_map)(labels).astype(np.uint8)


def load_isbi(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 30 ISBI 2012 training slices (uint8) and their classes (0 interior, 1 membrane)."""
    require(data, ISBI_IMAGES, ISBI_LABELS)
    return read_image(data / ISBI_IMAGES), classes(read_image(data / ISBI_LABELS), ISBI_MAP)


def load_nuclei(data: Path, ids: Sequence[str]) -> list[Sample]:
    """Nuclei images with classes (background, nucleus) and the true instance ids."""
    samples = []
    for name in ids:
        instances = read_image(data / "nuclei" / "masks" / f"{name}.tif")
        image = read_image(data / "nuclei" / "images" / f"{name}.tif")
        samples.append(Sample(name, image, classes(instances, NUCLEI_MAP), instances))
    return samples


def load_wbc(data: Path, ids: Sequence[str], label_map: str = WBC_MAP) -> list[Sample]:
    """WBC RGB images (names like ``dataset1/001``) with classes under ``label_map``."""
    samples = []
    for name in ids:
        folder, stem = name.split("/")
        image = read_image(data / "wbc" / folder / "images" / f"{stem}.png")
        mask = read_image(data / "wbc" / folder / "masks" / f"{stem}.png")
        samples.append(Sample(name, image, classes(mask, label_map)))
    return samples


def model_path(name: str, model_dir: Path | None) -> Path:
    """The file of model ``name``: ``model_dir/name.safetensors``, else the shipped one."""
    if model_dir is not None:
        path = model_dir / f"{name}{SUFFIX}"
        if not path.is_file():
            raise BenchmarkError(f"model file not found: {path}")
        return path
    shipped = shipped_models()
    if name not in shipped:
        raise BenchmarkError(
            f"shipped model {name!r} not found: train it with recipes/{name}.sh, or pass "
            f"--model-dir DIR holding {name}{SUFFIX}"
        )
    return shipped[name]


def model_origin(path: Path) -> str:
    """How a model file is named in results: shipped name or file name (no machine paths)."""
    return f"shipped {path.stem}" if shipped_models().get(path.stem) == path else path.name


def pixel_scores(
    preds: Sequence[np.ndarray], truths: Sequence[np.ndarray], class_names: Sequence[str]
) -> dict:
    """Dice/IoU per class, pooled (counts summed over images) and mean (over images).

    Uses ``core.metrics`` counts, so the empty-mask rule is the package's: a class absent from
    both maps of an image scores 1.0 for that image (it lifts the mean, not the pooled score).
    """
    count = len(class_names)
    per_image = [confusion_counts(p, t, count) for p, t in zip(preds, truths, strict=True)]
    pooled = sum(per_image, ConfusionCounts.zeros(count))
    dice = np.mean([c.dice() for c in per_image], axis=0)
    iou = np.mean([c.iou() for c in per_image], axis=0)

    def named(values) -> dict[str, float]:
        return {n: float(v) for n, v in zip(class_names, values, strict=True)}

    return {
        "images": len(per_image),
        "dice_pooled": named(pooled.dice()),
        "dice_mean": named(dice),
        "iou_pooled": named(pooled.iou()),
        "iou_mean": named(iou),
        "pixel_accuracy": pooled.pixel_accuracy(),
    }


def megapixels(images: Sequence[np.ndarray], rgb: bool) -> float:
    """Spatial megapixels of 2D images (colour channels not counted)."""
    return sum(int(np.prod(im.shape[:-1] if rgb else im.shape)) for im in images) / 1e6


def environment(device: torch.device) -> dict:
    """Where the numbers were measured."""
    return {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        # Other work on the machine slows every timing: keep the load beside the numbers.
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "napari_unet_loop": napari_unet_loop.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def device_text(env: dict) -> str:
    where = env["gpu"] or env["cpu"]
    load = env["load_average_1min"]
    text = f"{env['device']} ({where}), {env['torch_threads']} torch thread(s)"
    return text if load is None else f"{text}, load average {load:.1f} at the start"


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; numbers right-aligned, text left-aligned (by the first row)."""
    first = rows[0] if rows else header
    align = ["---:" if _numeric(cell) else "---" for cell in first]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _numeric(cell: object) -> bool:
    try:
        float(str(cell))
    except ValueError:
        return False
    return True


def write_results(name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md`` (each atomically)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    paths = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    for path, text in zip(
        paths, (json.dumps(payload, indent=2) + "\n", markdown + "\n"), strict=True
    ):
        with atomic_output(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths


def publish(name: str, quick: bool, payload: dict, markdown: str) -> None:
    """Write ``results/<name>[-quick].*``, print the tables and say where they went."""
    json_path, md_path = write_results(f"{name}-quick" if quick else name, payload, markdown)
    print(markdown)
    print(f"\nwrote {json_path.name} and {md_path.name} in benchmarks/results/", file=sys.stderr)


def add_common_options(
    p: argparse.ArgumentParser, holding: str, *, model_dir: bool = True, threads: bool = True
) -> None:
    """The options every data benchmark takes: ``--data`` (the folder ``holding`` the named
    datasets), and unless turned off ``--model-dir`` and ``--threads``."""
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"folder holding {holding} (default: %(default)s)",
    )
    if model_dir:
        p.add_argument(
            "--model-dir",
            type=Path,
            help="load NAME.safetensors from this folder instead of the shipped models",
        )
    if threads:
        p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def run_script(script: str, parse_args, run, argv: list[str] | None) -> int:
    """Parse the options and run; a problem the user can fix ends as one line."""
    from napari_unet_loop.core.errors import UnetLoopError

    args = parse_args(argv)
    try:
        run(args)
    except (BenchmarkError, UnetLoopError) as exc:
        sys.exit(f"{script}: error: {exc}")
    return 0


def cpu_matmul_gflops(n: int, repeats: int, dtypes: Sequence[str] = ("fp32", "bf16")) -> dict:
    """The CPU's dense matmul rate per dtype (n³, best of ``repeats`` after a warm-up), GFLOP/s.

    Where bf16 is emulated (no native support, see ``core.model.precision``) its matmul is
    timed at a quarter of the side: emulation is slow and its rate barely depends on size.
    """
    rates = {"size": n}
    for name in dtypes:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[name]
        side = n if name == "fp32" or bf16_supported() else max(n // 4, 256)
        print(f"timing the CPU's {name} matmul ({side}²)…", file=sys.stderr, flush=True)
        a, b = (torch.randn(side, side, dtype=dtype) for _ in range(2))
        torch.matmul(a, b)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            seconds.append(time.perf_counter() - start)
        rates[f"{name}_gflops"] = 2 * side**3 / min(seconds) / 1e9
        rates[f"{name}_size"] = side
    return rates

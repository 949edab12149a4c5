"""The Batch dock's job, without Qt: which files, where each output goes, and the worker
that segments them one after another with one model (``core.inference.batch``)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import InputError
from .models import load_source

if TYPE_CHECKING:
    from ..core.model.modelfile import Model

TIFF_SUFFIXES = (".tif", ".tiff")
OUTPUT_SUFFIX = "_labels.tif"
# what each output format appends to an input's stem
FORMATS = {"TIFF": OUTPUT_SUFFIX, "OME-TIFF": "_labels.ome.tif", "OME-Zarr": "_labels.zarr"}


@dataclass(frozen=True)
class FileStarted:
    index: int
    count: int
    path: Path


@dataclass(frozen=True)
class FileDone:
    output: Path


def output_path(source: Path, folder: Path, suffix: str = OUTPUT_SUFFIX) -> Path:
    """Where the labels of ``source`` go: ``<folder>/<stem>_labels.tif`` (or another format)."""
    return folder / f"{source.name.removesuffix(source.suffix).removesuffix('.ome')}{suffix}"


def input_files(text: str) -> list[Path]:
    """TIFF files from ``;``-separated files and folders; raises InputError when there are none."""
    files: list[Path] = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        path = Path(entry).expanduser()
        if path.is_dir():
            # A folder's earlier outputs are not inputs, so re-running into it is harmless.
            files += sorted(
                p
                for p in path.iterdir()
                if p.suffix.lower() in TIFF_SUFFIXES
                and not p.name.endswith((FORMATS["TIFF"], FORMATS["OME-TIFF"]))
            )
        elif not path.exists():
            raise InputError(f"{entry}: no such file or folder")
        elif path.suffix.lower() in TIFF_SUFFIXES:
            files.append(path)
        else:
            raise InputError(f"{entry}: not a TIFF file (.tif, .tiff) or a folder")
    if not files:
        raise InputError("no TIFF files to segment: choose files or a folder that has some")
    return files


def batch(
    files: list[Path],
    folder: Path,
    source: str | None,
    ready: Model | None,
    device: str,
    instances: bool,
    suffix: str,
    precision: str = "auto",
) -> Generator[Any, None, Model]:
    """Worker: load the model once, stream every file through it, say when each is done."""
    from ..core.inference.batch import iter_segment_file

    model = load_source(source, ready)
    for index, path in enumerate(files):
        yield FileStarted(index, len(files), path)
        output = output_path(path, folder, suffix)
        yield from iter_segment_file(
            path, output, model=model, device=device, instances=instances, precision=precision
        )
        yield FileDone(output)
    return model


@dataclass(frozen=True)
class OpenedLabels:
    """A label image read back from an output, ready to become a Labels layer."""

    name: str
    data: np.ndarray
    scale: tuple[float, ...]
    unit: str | None


def read_output(path: Path) -> list[OpenedLabels]:
    """The label images of one output: the TIFF itself, or each label image of an OME-Zarr
    output (which holds the image too). Raises ``OSError`` or ``UnetLoopError``."""
    from ..core.io.read import read_stack
    from ..core.io.read_zarr import label_images

    name = path.name.removesuffix(".zarr").removesuffix(".tif").removesuffix(".ome")
    opened = []
    for labels in label_images(path) if path.suffix == ".zarr" else [path]:
        with read_stack(labels) as stack:
            opened.append(OpenedLabels(name, stack.to_numpy(), stack.scale, stack.unit))
    return opened

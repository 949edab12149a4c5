"""Reading bioimage.io model packages (zip or folder) that napari-unet-loop exported.

Only packages of our own architecture (found by ``config.napari_unet_loop``) are taken. A
package is treated as hostile: each file's size is checked before it is read, the weights are
loaded with ``torch.load(weights_only=True)`` (nothing in the package is run), and
``modelfile.model_from_state`` then checks them against the architecture as a model file's are.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile
from pathlib import Path

import torch

from ..errors import ModelFileError, clean_text, one_line

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
# Checked before a package's files are read: our rdf is a few kB, our weights a few MB.
MAX_RDF_BYTES = 2**20
MAX_WEIGHTS_BYTES = 2**30


def is_model_package(path: str | os.PathLike) -> bool:
    """A ``.zip`` or a folder holding a bioimage.io description."""
    path = Path(path)
    if path.is_dir():
        return any((path / name).is_file() for name in RDF_NAMES)
    return path.suffix.lower() == ".zip" and path.is_file()


def _read_package(path: Path) -> tuple[dict, bytes]:
    """The description and the state-dict bytes of a zip or folder package, each file's size
    checked before it is read."""
    import yaml

    def read(name: str, limit: int) -> bytes:
        if path.is_dir():
            size, reader = (path / name).stat().st_size, (path / name).read_bytes
        else:
            archive = stack.enter_context(zipfile.ZipFile(path))
            size, reader = archive.getinfo(name).file_size, lambda: archive.read(name)
        if size > limit:
            raise ModelFileError(f"{path}: {name} is over the {limit >> 20} MB limit")
        return reader()

    with contextlib.ExitStack() as stack:
        for name in RDF_NAMES:
            try:
                rdf = yaml.safe_load(read(name, MAX_RDF_BYTES))
                break
            except (KeyError, FileNotFoundError):
                continue
        else:
            raise ModelFileError(
                f"{path}: no rdf.yaml or bioimageio.yaml; not a bioimage.io package"
            )
        if not isinstance(rdf, dict) or "napari_unet_loop" not in (rdf.get("config") or {}):
            raise ModelFileError(
                f"{path}: a bioimage.io package of another architecture; only packages exported "
                "by napari-unet-loop (`unet-loop export`) can be loaded"
            )
        source = ((rdf.get("weights") or {}).get("pytorch_state_dict") or {}).get("source")
        if not isinstance(source, str) or "/" in source or "\\" in source or source.startswith("."):
            raise ModelFileError(
                f"{path}: the package has no pytorch_state_dict weights beside its rdf "
                "(TorchScript or ONNX alone cannot be loaded)"
            )
        return rdf, read(source, MAX_WEIGHTS_BYTES)


def read_package(path: str | os.PathLike) -> tuple[dict, dict]:
    """The model metadata and state dict of a bioimage.io package (zip or folder) exported by
    this project; ``modelfile.load_model`` builds the model from them."""
    path = Path(path)
    try:
        rdf, weights = _read_package(path)
        # a JSON round trip: YAML may hold values (dates, sets) no model file can
        metadata = json.loads(json.dumps(rdf["config"]["napari_unet_loop"]))
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except ModelFileError:
        raise
    except Exception as exc:
        message = clean_text(one_line(exc))
        raise ModelFileError(f"{path}: not a readable bioimage.io package ({message})") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: bad metadata (config.napari_unet_loop is not a table)")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelFileError(f"{path}: the pytorch_state_dict weights are not a table of tensors")
    return metadata, state

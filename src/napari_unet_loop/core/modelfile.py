"""Model files: safetensors weights plus JSON metadata, and the registry of shipped models.

A model file is one ``.safetensors`` file. Its header metadata holds a JSON document with the
architecture, class names, normalization and provenance (data, slices, iterations, held-out
metrics). Loading never unpickles anything, and every failure becomes one ``ModelFileError``
that names the file.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .atomic import atomic_output
from .errors import ModelFileError
from .normalize import Normalization
from .registry import SUFFIX, shipped_models
from .unet import UNet, UNetConfig

FORMAT = "napari-unet-loop/1"


@dataclass
class Model:
    """A network with what is needed to use it on images and to tell where it came from."""

    network: UNet
    class_names: list[str]
    normalization: Normalization = field(default_factory=Normalization)
    name: str = "model"
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.class_names) != self.network.config.num_classes:
            raise ValueError(
                f"{len(self.class_names)} class names for a network with "
                f"{self.network.config.num_classes} classes"
            )

    @property
    def config(self) -> UNetConfig:
        return self.network.config

    @property
    def num_classes(self) -> int:
        return self.network.config.num_classes

    @property
    def in_channels(self) -> int:
        return self.network.config.in_channels

    def copy(self) -> Model:
        """An independent copy (weights on the CPU) that can be trained without touching self."""
        net = copy.deepcopy(self.network).cpu()
        return Model(
            net, list(self.class_names), self.normalization, self.name,
            copy.deepcopy(self.provenance),
        )

    def metadata(self) -> dict:
        return {
            "format": FORMAT,
            "name": self.name,
            "architecture": {"type": "unet", **self.config.to_dict()},
            "class_names": list(self.class_names),
            "normalization": self.normalization.to_dict(),
            "provenance": self.provenance,
        }


def new_model(
    class_names: list[str],
    *,
    in_channels: int = 1,
    depth: int = 4,
    base_channels: int = 16,
    batch_norm: bool = True,
    dropout: float = 0.0,
    normalization: Normalization | None = None,
    name: str = "model",
    seed: int | None = 0,
) -> Model:
    """A freshly initialised model (seeded, so two calls give the same weights)."""
    config = UNetConfig(
        in_channels=in_channels, num_classes=len(class_names), depth=depth,
        base_channels=base_channels, batch_norm=batch_norm, dropout=dropout,
    )
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = UNet(config)
    else:
        net = UNet(config)
    return Model(net, list(class_names), normalization or Normalization(), name)


def _state_and_metadata(model: Model, half: bool) -> tuple[dict, dict]:
    state = {}
    for key, value in model.network.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point():
            value = value.half()
        state[key] = value
    return state, {"napari_unet_loop": json.dumps(model.metadata())}


def save_model(model: Model, path: str | os.PathLike, *, half: bool = False) -> Path:
    """Write ``model`` to ``path`` atomically; ``half`` stores fp16 weights (half the size)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    state, meta = _state_and_metadata(model, half)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def model_to_bytes(model: Model) -> bytes:
    """The model file's content, in memory (fp32): what is sent to cluster workers."""
    from safetensors.torch import save

    state, meta = _state_and_metadata(model, half=False)
    return save(state, metadata=meta)


def model_from_bytes(data: bytes, source: str = "model data") -> Model:
    """The model a model file's content (e.g. from :func:`model_to_bytes`) holds."""
    from safetensors.torch import load

    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
        state = load(data)
    except Exception as exc:
        raise ModelFileError(f"{source}: not a readable model file ({exc})") from None
    return _build_model(source, header, state)


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """A shipped model's name or a file path → an existing path, or a clear error."""
    text = str(name_or_path)
    shipped = shipped_models()
    if text in shipped:
        return shipped[text]
    path = Path(text).expanduser()
    if path.is_file() or (path / "rdf.yaml").is_file() or (path / "bioimageio.yaml").is_file():
        return path  # a model file, or a bioimage.io package (zip or folder)
    if path.suffix == "" and path.with_suffix(SUFFIX).is_file():
        return path.with_suffix(SUFFIX)
    names = ", ".join(shipped) or "none"
    raise ModelFileError(f"unknown model {text!r}: not a file, and not a shipped model ({names})")


def load_model(name_or_path: str | os.PathLike) -> Model:
    """Load a shipped model by name, a model file or a bioimage.io package we exported, by path
    (fp32, on the CPU, in eval mode)."""
    path = resolve_model_path(name_or_path)
    from .model_zoo import import_model, is_model_package

    if is_model_package(path):
        return import_model(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable model file ({exc})") from None
    return _build_model(str(path), header, state)


def _build_model(source: str, header: dict, state: dict) -> Model:
    """A model from a file's metadata and tensors, or one ``ModelFileError`` naming ``source``."""
    if "napari_unet_loop" not in header:
        raise ModelFileError(f"{source}: safetensors file without napari-unet-loop metadata")
    try:
        meta = json.loads(header["napari_unet_loop"])
        if meta.get("format") != FORMAT:
            raise ValueError(f"unsupported format {meta.get('format')!r}")
        arch = dict(meta["architecture"])
        if arch.pop("type", "unet") != "unet":
            raise ValueError("architecture is not a U-Net")
        network = UNet(UNetConfig.from_dict(arch))
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        network.load_state_dict(state, strict=True)
        model = Model(
            network,
            list(meta["class_names"]),
            Normalization.from_dict(meta.get("normalization", {})),
            meta.get("name", Path(source).stem),
            meta.get("provenance", {}),
        )
    except Exception as exc:
        raise ModelFileError(f"{source}: weights do not match the metadata ({exc})") from None
    network.eval()
    return model

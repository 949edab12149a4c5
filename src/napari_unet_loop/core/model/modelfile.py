"""Model files: safetensors weights plus JSON metadata, and the registry of shipped models.

A model file is one ``.safetensors`` file. Its header metadata holds a JSON document with the
architecture, class names, normalization and provenance (data, slices, iterations, held-out
metrics). Loading never unpickles anything, and every failure becomes one ``ModelFileError``
that names the file.

A model file is treated as hostile: the header's size and the number of JSON containers in it
are bounded before it is parsed; the architecture is checked against bounds, and every tensor's
name, shape and type against it, before any weight is read or any layer allocated; weights must
be finite; strings from the file are cut to one short line. Saving refuses non-finite weights.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ModelFileError, clean_text, one_line
from ..io.atomic import atomic_output
from .normalize import Normalization
from .registry import SUFFIX, shipped_models
from .unet import UNet, UNetConfig

FORMAT = "napari-unet-loop/1"

# A header (tensor table plus our JSON metadata) larger than this, or with more JSON objects and
# arrays, is refused before it is parsed: parsing costs about 100 bytes per container.
MAX_HEADER_BYTES = 8 * 2**20
MAX_JSON_CONTAINERS = 200_000
# Names and class names from a file are cut to this many characters; other strings to 1000.
MAX_NAME = 100

_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
_INT_DTYPES = {"I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64"}


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
            net,
            list(self.class_names),
            self.normalization,
            self.name,
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
        in_channels=in_channels,
        num_classes=len(class_names),
        depth=depth,
        base_channels=base_channels,
        batch_norm=batch_norm,
        dropout=dropout,
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
        if value.is_floating_point() and not torch.isfinite(value).all():
            # fp16 holds at most 65504: larger weights would be saved as Inf
            limit = " in half precision" if half else ""
            raise ModelFileError(
                f"model {model.name!r} has non-finite weights{limit} ({key}); not saved"
            )
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
    try:
        with atomic_output(path) as tmp:
            save_file(state, str(tmp), metadata=meta)
    except Exception as exc:  # disk full, permissions: the temporary file is already gone
        raise ModelFileError(f"{path}: cannot write ({one_line(exc)})") from None
    return path


def model_to_bytes(model: Model) -> bytes:
    """The model file's content, in memory (fp32): what is sent to cluster workers."""
    from safetensors.torch import save

    state, meta = _state_and_metadata(model, half=False)
    return save(state, metadata=meta)


def model_from_bytes(data: bytes, source: str = "model data") -> Model:
    """The model a model file's content (e.g. from :func:`model_to_bytes`) holds."""
    from safetensors.torch import load

    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    header = _parse_header(source, size, data[8 : 8 + max(size, 0)])
    network, meta = _checked_network(source, header)
    try:
        state = load(data)
    except Exception as exc:
        raise ModelFileError(f"{source}: not a readable model file ({one_line(exc)})") from None
    return _build_model(source, network, meta, state)


_DTYPE_NAMES = {
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
}


def model_from_state(source: str, metadata: dict, state: dict) -> Model:
    """The model a state dict and its metadata describe, checked as a model file is
    (bioimage.io packages carry the two apart)."""
    header = {"__metadata__": {"napari_unet_loop": json.dumps(metadata)}}
    for name, value in state.items():
        header[name] = {
            "dtype": _DTYPE_NAMES.get(value.dtype, str(value.dtype)),
            "shape": list(value.shape),
        }
    network, meta = _checked_network(source, header)
    return _build_model(source, network, meta, state)


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
    from .model_package import is_model_package, read_package

    if is_model_package(path):
        return model_from_state(str(path), *read_package(path))
    source = str(path)
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            raw = f.read(size) if 0 < size <= MAX_HEADER_BYTES else b""
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot read ({one_line(exc)})") from None
    header = _parse_header(source, size, raw)
    network, meta = _checked_network(source, header)
    try:
        from safetensors import safe_open

        with safe_open(source, framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ModelFileError(f"{source}: not a readable model file ({one_line(exc)})") from None
    return _build_model(source, network, meta, state)


def _parse_header(source: str, size: int, raw: bytes) -> dict:
    """The safetensors header (tensor table and ``__metadata__``), within the bounds."""
    if size > MAX_HEADER_BYTES:
        raise ModelFileError(
            f"{source}: header of {size / 2**20:.0f} MB is over the {MAX_HEADER_BYTES >> 20} MB "
            "limit for model files"
        )
    if size <= 0 or len(raw) != size:
        raise ModelFileError(f"{source}: not a readable model file (no safetensors header)")
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_CONTAINERS:
        raise ModelFileError(f"{source}: metadata too complex (over {MAX_JSON_CONTAINERS} parts)")
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("the header is not a table")
    except Exception as exc:
        message = clean_text(one_line(exc))
        raise ModelFileError(f"{source}: not a readable model file ({message})") from None
    return header


def _checked_network(source: str, header: dict) -> tuple[UNet, dict]:
    """The network the metadata describes, built only once every tensor in the file is known to
    fit it (names, shapes, types), and the parsed metadata."""
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or "napari_unet_loop" not in metadata:
        raise ModelFileError(f"{source}: safetensors file without napari-unet-loop metadata")
    try:
        meta = json.loads(metadata["napari_unet_loop"])
        if not isinstance(meta, dict):
            raise ValueError("the metadata is not a table")
        if meta.get("format") != FORMAT:
            raise ValueError(f"unsupported format {clean_text(repr(meta.get('format')), 60)}")
        arch = meta["architecture"]
        if not isinstance(arch, dict):
            raise ValueError("architecture is not a table")
        arch = dict(arch)
        if arch.pop("type", "unet") != "unet":
            raise ValueError("architecture is not a U-Net")
        config = UNetConfig.from_dict(arch)
    except Exception as exc:
        raise ModelFileError(f"{source}: bad metadata ({clean_text(one_line(exc))})") from None
    with torch.device("meta"):  # shapes only: nothing is allocated
        expected = UNet(config).state_dict()
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        parts = [
            f"missing {len(missing)} (e.g. {missing[0]})" if missing else "",
            f"{len(extra)} unexpected (e.g. {clean_text(extra[0], 60)})" if extra else "",
        ]
        raise ModelFileError(
            f"{source}: weights do not match the metadata's architecture: "
            + ", ".join(p for p in parts if p)
        )
    for name, want in expected.items():
        entry = tensors[name]
        shape = entry.get("shape") if isinstance(entry, dict) else None
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if shape != list(want.shape):
            raise ModelFileError(
                f"{source}: weights do not match the metadata's architecture: {name} has shape "
                f"{clean_text(shape, 60)}, expected {list(want.shape)}"
            )
        if dtype not in (_FLOAT_DTYPES if want.is_floating_point() else _INT_DTYPES):
            kind = "floating-point" if want.is_floating_point() else "integer"
            raise ModelFileError(
                f"{source}: {name} holds {clean_text(dtype, 20)} values, expected {kind}"
            )
    return UNet(config), meta


def _clean_tree(value, depth: int = 0):
    """Provenance with every string cut to one line of at most 1000 characters."""
    if isinstance(value, str):
        return clean_text(value, 1000)
    if isinstance(value, list) and depth < 20:
        return [_clean_tree(v, depth + 1) for v in value]
    if isinstance(value, dict) and depth < 20:
        return {clean_text(k, MAX_NAME): _clean_tree(v, depth + 1) for k, v in value.items()}
    return value if isinstance(value, (int, float, bool, type(None))) else None


def _build_model(source: str, network: UNet, meta: dict, state: dict) -> Model:
    """The model from a checked network, its metadata and the file's tensors."""
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ModelFileError(f"{source}: weight {key} holds NaN or infinite values")
        if key.endswith("running_var") and (value < 0).any():
            raise ModelFileError(f"{source}: {key} holds negative variances")
    try:
        names = meta["class_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("class_names must be a list of names")
        normalization = meta.get("normalization", {})
        if not isinstance(normalization, dict):
            raise ValueError("normalization is not a table")
        provenance = meta.get("provenance", {})
        model = Model(
            network,
            [clean_text(n, MAX_NAME) for n in names],
            Normalization.from_dict(normalization),
            clean_text(meta.get("name", Path(source).stem), MAX_NAME),
            _clean_tree(provenance) if isinstance(provenance, dict) else {},
        )
        network.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True
        )
    except Exception as exc:
        raise ModelFileError(f"{source}: bad metadata ({clean_text(one_line(exc))})") from None
    network.eval()
    return model

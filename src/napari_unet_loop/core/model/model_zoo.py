"""bioimage.io model packages: export ours (model 0.5 spec) and import ones we exported.

Export writes a zip with the weights as a PyTorch state dict plus the U-Net's source file (so
the package runs without this project installed) and as TorchScript (deepImageJ, Java tools);
our normalisation as the spec's ``scale_range`` (percentiles per image, all channels together)
or ``scale_linear``; softmax as postprocessing; a test input and output; a cover; and our model
metadata under ``config``. It needs the optional ``bioimageio.spec``
(``pip install napari-unet-loop[bioimageio]``).

Import reads only packages of our own architecture (found by ``config.napari_unet_loop``): the
weights are loaded with ``torch.load(weights_only=True)``, so nothing in the package is run.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import InputError, ModelFileError, UnetLoopError, one_line

if TYPE_CHECKING:
    from .modelfile import Model

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
_WEIGHTS = "weights.pt"
_TORCHSCRIPT = "weights.torchscript.pt"
_TEST_SIDE = 64


def is_model_package(path: str | os.PathLike) -> bool:
    """A ``.zip`` or a folder holding a bioimage.io description."""
    path = Path(path)
    if path.is_dir():
        return any((path / name).is_file() for name in RDF_NAMES)
    return path.suffix.lower() == ".zip" and path.is_file()


def _test_image(model: Model) -> np.ndarray:
    """A seeded 1×C×Y×X test input with structure: blobs on a gradient, as raw 8-bit values."""
    side = max(_TEST_SIDE, model.config.size_multiple)
    yy, xx = np.mgrid[:side, :side] / side
    rng = np.random.default_rng(0)
    blobs = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.004) for cy, cx in rng.random((6, 2)))
    plane = 40 + 60 * xx + 150 * blobs + rng.normal(0, 8, (side, side))
    image = np.clip(plane, 0, 255).astype(np.float32)
    return np.repeat(image[None, None], model.in_channels, axis=1)


def predict_probabilities(model: Model, image: np.ndarray) -> np.ndarray:
    """What the package computes: our normalisation, the network, softmax (1×C×Y×X)."""
    norm = model.normalization
    x = norm.apply(image[0], norm.parameters(image[0]))[None]
    with torch.no_grad():
        logits = model.network.eval()(torch.from_numpy(np.ascontiguousarray(x)))
    return torch.softmax(logits, dim=1).numpy()


def _preprocessing(model: Model, spec) -> list:
    norm = model.normalization
    if norm.mode == "percentile":
        return [
            spec.ScaleRangeDescr(
                kwargs=spec.ScaleRangeKwargs(
                    axes=[spec.AxisId("channel"), spec.AxisId("y"), spec.AxisId("x")],
                    min_percentile=norm.low,
                    max_percentile=norm.high,
                    eps=1e-6,
                )
            )
        ]
    if norm.mode == "scale":
        return [spec.ScaleLinearDescr(kwargs=spec.ScaleLinearKwargs(gain=1 / norm.scale))]
    return []


def _documentation(model: Model) -> str:
    metrics = model.provenance.get("metrics") or model.provenance.get("held_out") or {}
    lines = [
        f"# {model.name}",
        "",
        "A 2D U-Net exported by napari-unet-loop. Input: one image (grey or RGB), normalised "
        "per image; output: class probabilities (softmax) for "
        f"{', '.join(model.class_names)}. Labels are the arg-max over classes.",
        "",
        "## Training data and metrics",
        "",
        "```json",
        json.dumps({"data": model.provenance.get("data"), "metrics": metrics}, indent=2),
        "```",
    ]
    return "\n".join(lines) + "\n"


def _cover(image: np.ndarray, probabilities: np.ndarray, path: Path) -> None:
    import imageio.v3 as iio

    raw = image[0].mean(axis=0)
    raw = (255 * (raw - raw.min()) / max(np.ptp(raw), 1e-6)).astype(np.uint8)
    labels = probabilities[0].argmax(axis=0)
    shown = (255 * labels / max(probabilities.shape[1] - 1, 1)).astype(np.uint8)
    side_by_side = np.concatenate([raw, shown], axis=1)  # the 2:1 a cover should have
    iio.imwrite(path, side_by_side.repeat(4, axis=0).repeat(4, axis=1))


def export_model(
    model: Model, output: str | os.PathLike, *, authors: list[str] | None = None
) -> Path:
    """Write ``model`` as a bioimage.io model package (a ``.zip``) at ``output``, atomically."""
    try:
        import bioimageio.spec.model.v0_5 as spec
        from bioimageio.spec import save_bioimageio_package
    except ImportError:
        raise UnetLoopError(
            "exporting to bioimage.io needs bioimageio.spec: "
            "pip install 'napari-unet-loop[bioimageio]'"
        ) from None
    from ..io.atomic import atomic_output

    output = Path(output)
    if output.suffix.lower() != ".zip":
        raise InputError(f"{output}: a bioimage.io package is a .zip; use a .zip name")
    if not output.parent.is_dir():
        raise InputError(f"{output}: cannot write, folder {output.parent} does not exist")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        _write_files(model, folder)
        try:
            descr = _describe(spec, model, folder, authors or ["napari-unet-loop"])
        except ValueError as exc:  # pydantic's ValidationError: the metadata does not fit
            raise UnetLoopError(
                f"{model.name}: not a valid bioimage.io model ({one_line(exc)})"
            ) from None
        with atomic_output(output) as tmp:
            save_bioimageio_package(descr, output_path=tmp.with_suffix(".zip"))
            os.replace(tmp.with_suffix(".zip"), tmp)
    return output


def _write_files(model: Model, folder: Path) -> None:
    """Weights, architecture source, test tensors, documentation and cover, into ``folder``."""
    from . import unet

    image = _test_image(model)
    probabilities = predict_probabilities(model, image)
    torch.save(model.network.state_dict(), folder / _WEIGHTS)
    torch.jit.script(model.network.eval()).save(str(folder / _TORCHSCRIPT))  # for deepImageJ
    (folder / "unet.py").write_text(Path(unet.__file__).read_text())  # imports only torch
    np.save(folder / "test_input.npy", image)
    np.save(folder / "test_output.npy", probabilities)
    (folder / "README.md").write_text(_documentation(model))
    _cover(image, probabilities, folder / "cover.png")


def _tensors(spec, model: Model, folder: Path) -> tuple:
    """The input (raw image, any size that is a multiple of 2**depth) and output descriptions."""
    size = spec.ParameterizedSize(min=model.config.size_multiple, step=model.config.size_multiple)
    channels = ["red", "green", "blue"] if model.in_channels == 3 else ["raw"]
    raw = spec.TensorId("raw")
    inputs = spec.InputTensorDescr(
        id=raw,
        axes=[
            spec.BatchAxis(),
            spec.ChannelAxis(channel_names=channels),
            spec.SpaceInputAxis(id=spec.AxisId("y"), size=size),
            spec.SpaceInputAxis(id=spec.AxisId("x"), size=size),
        ],
        test_tensor=spec.FileDescr(source=folder / "test_input.npy"),
        preprocessing=_preprocessing(model, spec),
    )
    outputs = spec.OutputTensorDescr(
        id=spec.TensorId("probabilities"),
        axes=[
            spec.BatchAxis(),
            spec.ChannelAxis(channel_names=list(model.class_names)),
            *(
                spec.SpaceOutputAxis(
                    id=spec.AxisId(a), size=spec.SizeReference(tensor_id=raw, axis_id=a)
                )
                for a in "yx"
            ),
        ],
        test_tensor=spec.FileDescr(source=folder / "test_output.npy"),
        postprocessing=[spec.SoftmaxDescr(kwargs=spec.SoftmaxKwargs(axis="channel"))],
    )
    return inputs, outputs


def _describe(spec, model: Model, folder: Path, authors: list[str]):
    inputs, outputs = _tensors(spec, model, folder)
    version = spec.Version(torch.__version__.split("+")[0])
    weights = spec.WeightsDescr(
        pytorch_state_dict=spec.PytorchStateDictWeightsDescr(
            source=folder / _WEIGHTS,
            architecture=spec.ArchitectureFromFileDescr(
                source=folder / "unet.py", callable="UNet", kwargs=model.config.to_dict()
            ),
            pytorch_version=version,
        ),
        torchscript=spec.TorchscriptWeightsDescr(
            source=folder / _TORCHSCRIPT, pytorch_version=version, parent="pytorch_state_dict"
        ),
    )
    return spec.ModelDescr(
        name=f"{model.name} U-Net",  # the spec wants 5 characters or more
        description=f"2D U-Net segmenting {', '.join(model.class_names[1:])} (napari-unet-loop)",
        authors=[spec.Author(name=name) for name in authors],
        cite=[
            spec.CiteEntry(
                text="Ronneberger, Fischer, Brox. U-Net: Convolutional Networks for Biomedical "
                "Image Segmentation. MICCAI 2015",
                doi=spec.Doi("10.1007/978-3-319-24574-4_28"),
            )
        ],
        license=spec.LicenseId("BSD-3-Clause"),
        documentation=spec.FileDescr(source=folder / "README.md"),
        covers=[spec.FileDescr(source=folder / "cover.png")],
        tags=["napari-unet-loop", "unet", "semantic-segmentation", "2d", "pytorch"],
        inputs=[inputs],
        outputs=[outputs],
        weights=weights,
        config=spec.Config(**{"napari_unet_loop": model.metadata()}),
    )


def _read_package(path: Path) -> tuple[dict, bytes]:
    """The description and the state-dict bytes of a zip or folder package."""
    import yaml

    def read(name: str) -> bytes:
        if path.is_dir():
            return (path / name).read_bytes()
        with zipfile.ZipFile(path) as archive:
            return archive.read(name)

    for name in RDF_NAMES:
        try:
            rdf = yaml.safe_load(read(name))
            break
        except (KeyError, FileNotFoundError):
            continue
    else:
        raise ModelFileError(f"{path}: no rdf.yaml or bioimageio.yaml; not a bioimage.io package")
    if not isinstance(rdf, dict) or "napari_unet_loop" not in (rdf.get("config") or {}):
        raise ModelFileError(
            f"{path}: a bioimage.io package of another architecture; only packages exported "
            "by napari-unet-loop (`unet-loop export`) can be loaded"
        )
    source = (rdf.get("weights") or {}).get("pytorch_state_dict", {}).get("source")
    if not isinstance(source, str) or "/" in source or source.startswith("."):
        raise ModelFileError(f"{path}: the package has no PyTorch state dict beside its rdf")
    return rdf, read(source)


def read_package(path: str | os.PathLike) -> tuple[dict, dict]:
    """The model metadata and state dict of a bioimage.io package (zip or folder) exported by
    this project; ``modelfile.load_model`` builds the model from them."""
    path = Path(path)
    try:
        rdf, weights = _read_package(path)
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable bioimage.io package ({exc})") from None
    return rdf["config"]["napari_unet_loop"], state

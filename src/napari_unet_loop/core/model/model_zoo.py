"""bioimage.io model packages: export ours (model 0.5 spec); ``model_package`` reads them back.

Export writes a zip with the weights as a PyTorch state dict plus the U-Net's source file (so
the package runs without this project installed), as TorchScript (deepImageJ, Java tools) and,
where onnx and onnxruntime are installed, as ONNX; our normalisation as the spec's
``scale_range`` (percentiles per image, all channels together) or ``scale_linear``; softmax as
postprocessing; a test input and output; a cover; the training data and metrics from the
model's provenance; and our model metadata under ``config``. It needs the optional
``bioimageio.spec`` (``pip install napari-unet-loop[bioimageio]``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import InputError, UnetLoopError, one_line
from .normalize import Normalization

if TYPE_CHECKING:
    from .modelfile import Model

_WEIGHTS = "weights.pt"
_TORCHSCRIPT = "weights.torchscript.pt"
_ONNX = "weights.onnx"
ONNX_OPSET = 17
_TEST_SIDE = 64


def _test_image(model: Model) -> np.ndarray:
    """A seeded 1×C×Y×X test input with structure: blobs on a gradient, as raw 8-bit values."""
    side = max(_TEST_SIDE, model.config.size_multiple)
    yy, xx = np.mgrid[:side, :side] / side
    rng = np.random.default_rng(0)
    blobs = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.004) for cy, cx in rng.random((6, 2)))
    plane = 40 + 60 * xx + 150 * blobs + rng.normal(0, 8, (side, side))
    image = np.clip(plane, 0, 255).astype(np.float32)
    return np.repeat(image[None, None], model.in_channels, axis=1)


def package_normalization(model: Model) -> Normalization:
    """The normalisation a package can state: automatic inversion depends on the image, which
    the spec's steps cannot express, so only a fixed ``invert`` is kept."""
    norm = model.normalization
    return replace(norm, polarity="invert" if norm.polarity == "invert" else "keep")


def predict_probabilities(model: Model, image: np.ndarray) -> np.ndarray:
    """What the package computes: our normalisation, the network, softmax (1×C×Y×X)."""
    norm = package_normalization(model)
    x = norm.apply(image[0], norm.parameters(image[0]))[None]
    with torch.no_grad():
        logits = model.network.eval()(torch.from_numpy(np.ascontiguousarray(x)))
    return torch.softmax(logits, dim=1).numpy()


def _preprocessing(model: Model, spec) -> list:
    steps = _scaling(model.normalization, spec)
    if package_normalization(model).polarity == "invert":  # 1 - x after the scaling
        steps.append(spec.ScaleLinearDescr(kwargs=spec.ScaleLinearKwargs(gain=-1.0, offset=1.0)))
    return steps


def _scaling(norm: Normalization, spec) -> list:
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
    """The package's README: what goes in and out, and the training data, runs and held-out
    metrics from the model's provenance."""
    norm, prov = model.normalization, model.provenance
    scaling = {
        "percentile": f"the {norm.low:g} and {norm.high:g} percentiles map to 0 and 1 "
        "(`scale_range`, over all channels together)",
        "scale": f"divided by {norm.scale:g} (`scale_linear`)",
        "none": "used as is",
    }[norm.mode]
    if package_normalization(model).polarity == "invert":
        scaling += ", then inverted (`scale_linear`: 1 - x)"
    elif norm.polarity == "auto" and norm.background is not None:
        scaling += (
            f"; napari-unet-loop also inverts a grey image whose background is not "
            f"{norm.background}, which this package does not"
        )
    lines = [
        f"# {model.name}",
        "",
        "A 2D U-Net exported by [napari-unet-loop](https://github.com/napari-unet-loop/"
        "napari-unet-loop); `unet-loop segment --model` and the napari plugin load this package.",
        "",
        f"- input `raw`: one image (batch × {model.in_channels} channel(s) × Y × X, Y and X "
        f"multiples of {model.config.size_multiple}); per image, {scaling}.",
        f"- output `probabilities`: softmax over the classes {', '.join(model.class_names)}; "
        "the labels are the arg-max over classes.",
    ]
    for title, value in (
        ("Training data", prov.get("data")),
        ("Training runs", prov.get("training")),
        ("Held-out metrics", prov.get("held_out_metrics")),
    ):
        if value:
            lines += ["", f"## {title}", "", "```json", json.dumps(value, indent=2), "```"]
    return "\n".join(lines) + "\n"


def _spec_name(text: str) -> str:
    """``text`` with only the characters the spec allows in a name (others become spaces)."""
    return re.sub(r"[^A-Za-z0-9_+\- ()]+", " ", text).strip()[:100]


def _training_data(spec, model: Model):
    """The training data named in the model's provenance, as an inline dataset description."""
    data = model.provenance.get("data")
    if not isinstance(data, dict) or not data.get("images"):
        return None
    images = [str(i) for i in data["images"]][:3]
    name = _spec_name(", ".join(images))
    keys = ("images", "labels", "slices", "val_slices", "label_map")
    parts = [f"{key}: {data[key]}" for key in keys if data.get(key) is not None]
    return spec.DatasetDescr(name=f"{name} (training data)", description="; ".join(parts)[:1000])


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


def onnx_available() -> bool:
    """ONNX weights are written only where onnxruntime can check them (``bioimageio.core``)."""
    return all(importlib.util.find_spec(name) for name in ("onnx", "onnxruntime"))


def _write_onnx(model: Model, image: np.ndarray, path: Path) -> None:
    """The network as ONNX, any batch and image size (the TorchScript-based exporter, which
    needs neither onnxscript nor a dynamo trace)."""
    dynamic = {0: "batch", 2: "y", 3: "x"}
    example = torch.from_numpy(package_normalization(model)(image[0])[None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            model.network.eval(),
            (example,),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["raw"],
            output_names=["logits"],
            dynamic_axes={"raw": dynamic, "logits": dynamic},
        )


def _write_files(model: Model, folder: Path) -> None:
    """Weights, architecture source, test tensors, documentation and cover, into ``folder``."""
    from . import unet

    image = _test_image(model)
    probabilities = predict_probabilities(model, image)
    torch.save(model.network.state_dict(), folder / _WEIGHTS)
    torch.jit.script(model.network.eval()).save(str(folder / _TORCHSCRIPT))  # for deepImageJ
    if onnx_available():
        _write_onnx(model, image, folder / _ONNX)
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
        onnx=spec.OnnxWeightsDescr(
            source=folder / _ONNX, opset_version=ONNX_OPSET, parent="pytorch_state_dict"
        )
        if (folder / _ONNX).is_file()
        else None,
    )
    return spec.ModelDescr(
        name=f"{_spec_name(model.name)} U-Net",  # the spec wants 5 characters or more
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
        training_data=_training_data(spec, model),
        inputs=[inputs],
        outputs=[outputs],
        weights=weights,
        config=spec.Config(**{"napari_unet_loop": model.metadata()}),
    )

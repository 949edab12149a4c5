"""Segment a file, folder, zarr or array to labels on disk, slice by slice, in constant memory.

The same generator serves the CLI (with a progress bar) and the Batch widget (in a worker,
with Cancel): closing it mid-way removes the temporary files, so no half-written file ever
appears under the output name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.read import read_stack
from ..io.read_zarr import is_zarr_path, ngff_version
from ..io.write import open_label_writer
from ..model.modelfile import Model, load_model
from .postprocess import StackInstances
from .predict import Progress, SlicePrediction, StackLike, image_layout, iter_predict
from .scale import automatic_factor


def _open_source(source, ctx: ExitStack) -> tuple[StackLike, tuple[float, ...] | None, bool]:
    """The image to segment, its pixel size and whether it is colour, from a path or array."""
    if isinstance(source, (str, os.PathLike)):
        stack = ctx.enter_context(read_stack(source))
        return stack, stack.scale, stack.rgb
    return source, None, image_layout(source.shape).rgb


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _overlaps(a: Path, b: Path) -> bool:
    """The same file or folder, or one inside the other."""
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_outputs(
    source: str | os.PathLike | StackLike,
    output: str | os.PathLike,
    probabilities: str | os.PathLike | None = None,
) -> None:
    """Refuse outputs that would overwrite the input or each other.

    A folder of images may hold the outputs (its listing skips them on the next run); any
    other input may not be, hold or share a path with an output: a zarr output replaces its
    whole folder, and a zarr input is a folder that would be modified.
    """
    outputs = {"-o": (output, _resolved(output))}
    if probabilities is not None:
        outputs["--probabilities"] = (probabilities, _resolved(probabilities))
        if _overlaps(outputs["-o"][1], outputs["--probabilities"][1]):
            raise InputError(f"--probabilities {probabilities} is the same as -o {output}")
    if not isinstance(source, (str, os.PathLike)):
        return
    given = _resolved(source)
    image_folder = given.is_dir() and not is_zarr_path(given)
    for option, (name, out) in outputs.items():
        inside_folder = image_folder and out != given and out.is_relative_to(given)
        if _overlaps(out, given) and not inside_folder:
            raise InputError(
                f"{option} {name} would overwrite the input {source}; choose another output name"
            )


def _output_shape(image: StackLike, rgb: bool) -> tuple[int, ...]:
    layout = image_layout(image.shape, rgb)
    return (layout.num_slices, *layout.slice_shape) if layout.is_stack else layout.slice_shape


def _slices(image: StackLike, shape: tuple[int, ...]):
    """The image as a sequence of 2D slices (a single image is a one-slice sequence)."""
    return image if len(shape) == 3 else [image]


def iter_segment_file(
    source: str | os.PathLike | StackLike,
    output: str | os.PathLike,
    *,
    model: Model | str = "em-membranes",
    device: str = "auto",
    precision: str = "auto",
    instances: bool = False,
    probabilities: str | os.PathLike | None = None,
    tile_size: int | None = None,
    batch_size: int | None = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    diameter: float | None = None,
) -> Iterator[Progress]:
    """Stream ``source`` through ``model`` into ``output``; yields progress.

    ``source`` is a path ``read_stack`` opens (TIFF, folder, zarr, OME-Zarr) or an array
    (numpy, dask, zarr); ``output`` is a ``.tif`` or a ``.zarr`` name. ``instances`` writes
    instance labels (touching objects split) instead of class indices; ``probabilities``
    also writes the class probabilities (C planes per slice, float32). With ``scheduler``
    (a ``dask.distributed`` address, or "local") the network runs on that cluster in blocks
    of ``chunk_size`` pixels (see ``core.inference.distributed``) and progress counts slices.
    ``diameter`` is the objects' size in pixels (None: measured on a few slices); the slices
    are rescaled to the model's object scale and the labels come back on the input's grid
    (see ``core.inference.scale``). Instance ids are unique over the whole stack.
    ``precision`` is that of ``iter_predict`` (not used on a cluster).
    """
    check_outputs(source, output, probabilities)
    if scheduler is not None:
        if instances or probabilities is not None or diameter is not None:
            raise InputError(
                "instances, probabilities and diameter are not available with a scheduler"
            )
        yield from _iter_segment_on_cluster(source, output, model, scheduler, chunk_size)
        return
    options = {k: v for k, v in (("tile_size", tile_size), ("batch_size", batch_size)) if v}
    with ExitStack() as ctx:
        # input and output are checked before the (slower) model load
        image, scale, rgb = _open_source(source, ctx)
        shape = _output_shape(image, rgb)
        open_label_writer(output, shape=shape)
        if not isinstance(model, Model):
            model = load_model(model)
        factor = automatic_factor(model.provenance, _slices(image, shape), diameter)
        number = StackInstances(model.num_classes, factor)
        described = _describe_labels(image, rgb, model, instances)
        writer = ctx.enter_context(
            open_label_writer(
                output,
                scale=scale,
                unit=getattr(image, "unit", None),
                dtype=np.uint32 if instances else np.uint8,
                shape=shape,
                **described,
            )
        )
        prob_writer = None
        if probabilities is not None:
            planes = (model.num_classes * (shape[0] if len(shape) == 3 else 1), *shape[-2:])
            prob_writer = ctx.enter_context(
                open_label_writer(
                    probabilities,
                    scale=scale,
                    unit=getattr(image, "unit", None),
                    dtype=np.float32,
                    shape=planes,
                    channels=model.num_classes,
                    class_names=model.class_names,
                    version=described["version"],
                )
            )
        # probabilities also sharpen the instance split where touching objects meet
        keep = prob_writer is not None or instances
        events = iter_predict(
            image,
            model,
            device=device,
            rgb=rgb,
            keep_probabilities=keep,
            scale=factor,
            precision=precision,
            **options,
        )
        for event in events:
            if isinstance(event, SlicePrediction):
                labels = event.labels
                if instances:
                    labels = number(labels, event.probabilities)
                writer.write(labels)
                if prob_writer is not None:
                    for plane in event.probabilities:
                        prob_writer.write(plane)
            else:
                yield event


def _describe_labels(image: StackLike, rgb: bool, model: Model, instances: bool) -> dict:
    """What an OME-Zarr output stores beside the labels: the input image and class names, in
    the input's NGFF version where that is 0.5 (else 0.4)."""
    source = getattr(image, "path", None) if getattr(image, "storage", None) == "zarr" else None
    version = "0.5" if source is not None and ngff_version(source) == "0.5" else "0.4"
    described = {"image": image, "rgb": rgb, "version": version}
    if instances:
        return {**described, "name": "instances"}
    return {**described, "name": "classes", "class_names": model.class_names}


def _iter_segment_on_cluster(
    source: str | os.PathLike | StackLike,
    output: str | os.PathLike,
    model: Model | str,
    scheduler: str,
    chunk_size: int | None,
) -> Iterator[Progress]:
    from .distributed import DEFAULT_CHUNK_SIZE, connect, iter_slices, lazy_stack, segment_dask

    with ExitStack() as ctx:
        image, scale, rgb = _open_source(source, ctx)
        shape = _output_shape(image, rgb)
        open_label_writer(output, shape=shape)  # checked before the (slower) model load
        if not isinstance(model, Model):
            model = load_model(model)
        writer = open_label_writer(
            output,
            scale=scale,
            unit=getattr(image, "unit", None),
            shape=shape,
            **_describe_labels(image, rgb, model, False),
        )
        if isinstance(source, (str, os.PathLike)):
            image = lazy_stack(source)  # read by the workers, not through this process
        client = ctx.enter_context(connect(scheduler))
        labels = segment_dask(
            image, model, chunk_size=chunk_size or DEFAULT_CHUNK_SIZE, rgb=rgb, client=client
        )
        slices = labels if len(shape) == 3 else labels[None]
        with writer:
            for done, plane in enumerate(iter_slices(slices, client), start=1):
                writer.write(plane)
                yield Progress(done, len(slices))


def segment_file(
    source: str | os.PathLike | StackLike,
    output: str | os.PathLike,
    *,
    show_progress: bool = False,
    **options,
) -> Path:
    """Run :func:`iter_segment_file` to the end, optionally with a tqdm progress bar."""
    bar = None
    name = Path(source).name if isinstance(source, (str, os.PathLike)) else "array"
    unit = "slice" if options.get("scheduler") else "tile"
    try:
        for event in iter_segment_file(source, output, **options):
            if show_progress and bar is None:
                from tqdm import tqdm

                # opened at the first step, so input errors are not preceded by an empty bar
                bar = tqdm(desc=f"segment {name}", unit=unit, total=event.total)
            if bar is not None:
                bar.total = event.total  # grows if inference retries with smaller tiles
                bar.update(event.done - bar.n)  # redraws at most every 0.1 s
    finally:
        if bar is not None:
            bar.close()
    return Path(output)

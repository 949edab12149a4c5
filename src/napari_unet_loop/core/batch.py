"""Segment a file or folder to a label TIFF on disk, slice by slice, in constant memory.

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

from .inference import Progress, SlicePrediction, iter_predict
from .io import LabelWriter, read_stack
from .modelfile import Model, load_model
from .postprocess import instance_labels


def iter_segment_file(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: Model | str = "em-membranes",
    device: str = "auto",
    instances: bool = False,
    probabilities: str | os.PathLike | None = None,
    tile_size: int | None = None,
    batch_size: int | None = None,
) -> Iterator[Progress]:
    """Stream ``source`` through ``model`` into ``output``; yields tile progress.

    ``instances`` writes instance labels (touching objects split) instead of class indices;
    ``probabilities`` also writes the class probabilities (C planes per slice, float32).
    """
    options = {k: v for k, v in (("tile_size", tile_size), ("batch_size", batch_size)) if v}
    with ExitStack() as stack_ctx:
        # input and output are checked before the (slower) model load
        stack = stack_ctx.enter_context(read_stack(source))
        LabelWriter(output)
        if not isinstance(model, Model):
            model = load_model(model)
        foreground = tuple(range(1, model.num_classes))
        writer = stack_ctx.enter_context(
            LabelWriter(output, scale=stack.scale, dtype=np.uint32 if instances else np.uint8)
        )
        prob_writer = None
        if probabilities is not None:
            prob_writer = stack_ctx.enter_context(
                LabelWriter(probabilities, scale=stack.scale, dtype=np.float32)
            )
        # probabilities also sharpen the instance split where touching objects meet
        keep = prob_writer is not None or instances
        for event in iter_predict(stack, model, device=device, keep_probabilities=keep, **options):
            if isinstance(event, SlicePrediction):
                labels = event.labels
                if instances:
                    labels = instance_labels(
                        labels, foreground=foreground, probabilities=event.probabilities
                    )
                writer.write(labels)
                if prob_writer is not None:
                    for plane in event.probabilities:
                        prob_writer.write(plane)
            else:
                yield event


def segment_file(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    show_progress: bool = False,
    **options,
) -> Path:
    """Run :func:`iter_segment_file` to the end, optionally with a tqdm progress bar."""
    bar = None
    try:
        for event in iter_segment_file(source, output, **options):
            if show_progress and bar is None:
                from tqdm import tqdm

                # opened at the first tile, so input errors are not preceded by an empty bar
                bar = tqdm(desc=f"segment {Path(source).name}", unit="tile", total=event.total)
            if bar is not None:
                bar.n = event.done
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    return Path(output)

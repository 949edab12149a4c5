"""Record a shipped model's training scale (``core.scale.record_scale``) in its file.

Usage: python recipes/record_scale.py MODEL --images DIR --labels DIR [...] [--slices SPEC]

The images, labels and slices are those of the model's recipe (``--images``/``--labels`` may
repeat, as for ``unet-loop train``); labels are read raw, so instance masks give one object
per id. The weights are left as they are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from napari_unet_loop.core.inference.scale import record_scale
from napari_unet_loop.core.model.modelfile import load_model, resolve_model_path, save_model
from napari_unet_loop.core.training.datasets import Pairs, load_pairs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--images", action="append", required=True)
    p.add_argument("--labels", action="append", required=True)
    p.add_argument("--slices", help="training slices/images: 0-21, or @FILE of names")
    p.add_argument("--limit", type=int, default=48, help="measure at most N images, spread")
    args = p.parse_args()
    several = len(args.images) > 1
    pairs = sum(
        (
            load_pairs(i, lab, prefix=f"{Path(i).parent.name}/" if several else "")
            for i, lab in zip(args.images, args.labels, strict=True)
        ),
        Pairs([], [], []),
    )
    chosen = pairs.indices(args.slices) if args.slices else list(range(len(pairs)))
    if len(chosen) > args.limit:
        chosen = [chosen[int(i)] for i in np.linspace(0, len(chosen) - 1, args.limit)]
    pairs = pairs.select(chosen)
    path = resolve_model_path(args.model)
    model = load_model(path)
    record = record_scale(model.provenance, pairs.images, pairs.labels)
    save_model(model, path, half=True)  # shipped models are stored in fp16
    print(f"{path.name}: {record}")


if __name__ == "__main__":
    main()

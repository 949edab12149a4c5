"""``unet-loop``: segment, train and evaluate from the shell.

Every error a user can cause ends as one line on stderr and exit status 2; no traceback,
no partial output file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unet-loop", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("segment", help="segment a TIFF stack, a zarr or a folder of images")
    s.add_argument(
        "input", help="TIFF file (2D, Z×Y×X or RGB), zarr or OME-Zarr, or folder of 2D images"
    )
    s.add_argument("-o", "--output", required=True,
                   help="labels to write: .tif, .ome.tif (OME-TIFF) or .zarr (OME-Zarr)")
    s.add_argument("--model", default="em-membranes", help="shipped model name or model file")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    s.add_argument("--instances", action="store_true", help="write instance labels")
    s.add_argument("--diameter", type=float, default=None, metavar="PIXELS",
                   help="typical object diameter (default: measured on the image); the image "
                        "is rescaled to the model's object scale")
    s.add_argument("--probabilities", metavar="PROB.tif", help="also write class probabilities")
    s.add_argument("--tile-size", type=int, default=None, help="tile side in pixels")
    s.add_argument("--batch-size", type=int, default=None, help="tiles per forward pass")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a dask.distributed cluster (tcp://host:8786, or 'local')")
    s.add_argument("--chunk-size", type=int, default=None,
                   help="with --scheduler: block side in pixels (default 1024)")

    t = sub.add_parser("train", help="train or fine-tune a model on image/label pairs")
    t.add_argument("--images", required=True, action="append",
                   help="TIFF stack or folder of images (repeat for several folders)")
    t.add_argument("--labels", required=True, action="append",
                   help="TIFF stack or folder of label images, one per --images")
    t.add_argument("--slices", help="training slices/images: 0-23, or @FILE of names")
    t.add_argument("--val-slices", help="validation slices/images: 24-29, or @FILE of names")
    t.add_argument("--label-map", help="raw value to class, e.g. 255:0,0:1 or 0:0,*:1")
    t.add_argument("--classes", default="background,foreground", help="class names, comma list")
    t.add_argument("--separate-touching", action="store_true",
                   help="labels are instance ids: where two objects touch, their border pixels "
                        "become background, so the network learns to keep them apart")
    t.add_argument("--from", dest="from_model", help="model to fine-tune (default: new network)")
    t.add_argument("--iterations", type=int, default=2000)
    t.add_argument("--patch-size", type=int, default=256)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--learning-rate", type=float, default=1e-3)
    t.add_argument("--schedule", default="constant", choices=("constant", "cosine"),
                   help="learning rate over the run: constant, or cosine decay to zero")
    t.add_argument("--elastic", type=float, default=0.0, metavar="PIXELS",
                   help="elastic deformation strength in patch pixels (default 0: off)")
    t.add_argument("--patience", type=int, default=None, help="early stop after N checks")
    t.add_argument("--val-every", type=int, default=100)
    t.add_argument("--depth", type=int, default=4)
    t.add_argument("--base-channels", type=int, default=16)
    t.add_argument("--name", help="model name stored in the file (default: output stem)")
    t.add_argument("--half", action="store_true", help="store fp16 weights (half the size)")
    t.add_argument("--device", default="auto")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")

    e = sub.add_parser("evaluate", help="Dice/IoU, pixel error and Rand error of a prediction")
    e.add_argument("prediction", help="label TIFF of class indices")
    e.add_argument("truth", help="ground-truth label TIFF")
    e.add_argument("--slices", help="slices to evaluate, e.g. 24-29 (default: all)")
    e.add_argument("--truth-map", help="map ground-truth values to classes, e.g. 255:0,0:1")
    e.add_argument("--prediction-map", help="map prediction values to classes")
    e.add_argument("--classes", help="class names, comma list (default: from the values)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub.add_parser("models", help="list the shipped models")
    _add_export(sub)
    return p


def _add_export(sub) -> None:
    x = sub.add_parser("export", help="write a model as a bioimage.io package (.zip)")
    x.add_argument("model", help="shipped model name or model file")
    x.add_argument("-o", "--output", required=True, help="package to write (.zip)")
    x.add_argument("--author", action="append", help="author name (repeat for several)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .core.errors import UnetLoopError

    commands = {
        "segment": _segment, "train": _train, "evaluate": _evaluate, "models": _models,
        "export": _export,
    }
    try:
        commands[args.command](args)
    except UnetLoopError as exc:
        print(f"unet-loop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"unet-loop {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


def _segment(args: argparse.Namespace) -> None:
    from .core.batch import segment_file

    segment_file(
        args.input, args.output, model=args.model, device=args.device,
        instances=args.instances, probabilities=args.probabilities,
        tile_size=args.tile_size, batch_size=args.batch_size, scheduler=args.scheduler,
        diameter=args.diameter,
        chunk_size=args.chunk_size, show_progress=True,
    )


def _train(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from .core.datasets import Pairs, load_pairs
    from .core.errors import InputError
    from .core.labelmap import parse_label_map
    from .core.modelfile import load_model, new_model, save_model
    from .core.training import TrainConfig, train

    output = Path(args.output)
    if not output.parent.is_dir():
        raise InputError(f"cannot write {output}: folder {output.parent} does not exist")
    label_map = parse_label_map(args.label_map) if args.label_map else None
    if len(args.images) != len(args.labels):
        raise InputError("give one --labels for each --images")
    several = len(args.images) > 1
    pairs = sum(
        (
            load_pairs(
                i, lab, label_map, prefix=f"{Path(i).parent.name}/" if several else "",
                touching_apart=args.separate_touching,
            )
            for i, lab in zip(args.images, args.labels, strict=True)
        ),
        Pairs([], [], []),
    )
    chosen = pairs.indices(args.slices) if args.slices else list(range(len(pairs)))
    val = pairs.indices(args.val_slices) if args.val_slices else []
    if set(chosen) & set(val):
        raise InputError("training and validation slices overlap")
    if args.from_model:
        model = load_model(args.from_model)
    else:
        rgb = pairs.images[0].ndim == 3
        model = new_model(
            [c.strip() for c in args.classes.split(",")], in_channels=3 if rgb else 1,
            depth=args.depth, base_channels=args.base_channels, seed=args.seed,
        )
    model.name = args.name or output.name.removesuffix(".safetensors")
    train_pairs, val_pairs = pairs.select(chosen), pairs.select(val)
    config = TrainConfig(
        iterations=args.iterations, patch_size=args.patch_size, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, val_every=args.val_every,
        patience=args.patience, device=args.device, schedule=args.schedule,
        elastic=args.elastic,
    )
    updates = train(
        model, train_pairs.images, train_pairs.labels, config=config,
        val_images=val_pairs.images or None, val_labels=val_pairs.labels or None,
    )
    final = None
    with tqdm(total=config.iterations, desc="train", unit="it") as bar:
        for update in updates:
            bar.n = update.iteration
            postfix = {"loss": f"{update.loss:.4f}"}
            if update.val_dice is not None:
                postfix["val_dice"] = f"{update.val_dice:.4f}"
            bar.set_postfix(postfix, refresh=True)
            if update.done:
                final = update.model
    final.provenance.setdefault("data", {}).update(
        images=[_short(i) for i in args.images], labels=[_short(lab) for lab in args.labels],
        label_map=args.label_map, separate_touching=args.separate_touching,
        slices=args.slices, val_slices=args.val_slices,
        train=[train_pairs.names[0], train_pairs.names[-1], len(train_pairs)],
        validation=val_pairs.names,
    )
    path = save_model(final, output, half=args.half)
    print(f"wrote {path}")


def _short(path: str) -> str:
    """The data set's own part of a path (``isbi2012/train-volume.tif``): no machine folders."""
    return "/".join(Path(path).resolve().parts[-2:])


def _evaluate(args: argparse.Namespace) -> None:
    from .core.evaluation import evaluate_files

    report = evaluate_files(
        args.prediction, args.truth, slices=args.slices, truth_map=args.truth_map,
        prediction_map=args.prediction_map,
        class_names=args.classes.split(",") if args.classes else None,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())


def _models(args: argparse.Namespace) -> None:
    from .core.modelfile import load_model
    from .core.registry import shipped_models

    for name, path in shipped_models().items():
        model = load_model(path)
        print(f"{name:16s} classes={','.join(model.class_names)}  {path.stat().st_size >> 10} KiB")


def _export(args: argparse.Namespace) -> None:
    from .core.model_zoo import export_model
    from .core.modelfile import load_model

    print(f"wrote {export_model(load_model(args.model), args.output, authors=args.author)}")


if __name__ == "__main__":
    sys.exit(main())

"""``unet-loop``: segment, train and evaluate from the shell.

Every error a user can cause ends as one line on stderr and exit status 2; no traceback,
no partial output file, no input overwritten. Options are checked before any work starts.
SIGINT and SIGTERM stop a run cleanly (exit 130 and 143), removing its temporary files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import warnings
from pathlib import Path

from . import __version__

# Sizes beyond these are mistakes, not settings (a 100000 px patch asks for 46 GiB).
MAX_PATCH_SIZE = 4096
MAX_BATCH_SIZE = 1024
MAX_BATCH_PIXELS = 2**26  # training batch × patch²
MAX_TILE_SIZE = 2**16
MAX_LEARNING_RATE = 1.0
# core.model.precision.PRECISIONS, spelt out so that --help does not import torch
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        # one line, like every other error (argparse would print the usage first)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="unet-loop", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("segment", help="segment a TIFF stack, a zarr or a folder of images")
    s.add_argument(
        "input", help="TIFF file (2D, Z×Y×X or RGB), zarr or OME-Zarr, or folder of 2D images"
    )
    s.add_argument(
        "-o",
        "--output",
        required=True,
        help="labels to write: .tif, .ome.tif (OME-TIFF) or .zarr (OME-Zarr)",
    )
    s.add_argument("--model", default="em-membranes", help="shipped model name or model file")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    s.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="network arithmetic; auto: bf16 only where measured faster",
    )
    s.add_argument("--instances", action="store_true", help="write instance labels")
    s.add_argument(
        "--diameter",
        type=float,
        default=None,
        metavar="PIXELS",
        help="typical object diameter (default: measured on the image); the image "
        "is rescaled to the model's object scale",
    )
    s.add_argument("--probabilities", metavar="PROB.tif", help="also write class probabilities")
    s.add_argument("--tile-size", type=int, default=None, help="tile side in pixels")
    s.add_argument("--batch-size", type=int, default=None, help="tiles per forward pass")
    s.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a dask.distributed cluster (tcp://host:8786, or 'local')",
    )
    s.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="with --scheduler: block side in pixels (default 1024)",
    )

    t = sub.add_parser("train", help="train or fine-tune a model on image/label pairs")
    t.add_argument(
        "--images",
        required=True,
        action="append",
        help="TIFF stack or folder of images (repeat for several folders)",
    )
    t.add_argument(
        "--labels",
        required=True,
        action="append",
        help="TIFF stack or folder of label images, one per --images",
    )
    t.add_argument("--slices", help="training slices/images: 0-23, or @FILE of names")
    t.add_argument("--val-slices", help="validation slices/images: 24-29, or @FILE of names")
    t.add_argument("--label-map", help="raw value to class, e.g. 255:0,0:1 or 0:0,*:1")
    t.add_argument("--classes", default="background,foreground", help="class names, comma list")
    t.add_argument(
        "--separate-touching",
        action="store_true",
        help="labels are instance ids: where two objects touch, their border pixels "
        "become background, so the network learns to keep them apart",
    )
    t.add_argument("--from", dest="from_model", help="model to fine-tune (default: new network)")
    t.add_argument("--iterations", type=int, default=2000)
    t.add_argument("--patch-size", type=int, default=256)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--learning-rate", type=float, default=1e-3)
    t.add_argument(
        "--schedule",
        default="constant",
        choices=("constant", "cosine"),
        help="learning rate over the run: constant, or cosine decay to zero",
    )
    t.add_argument(
        "--elastic",
        type=float,
        default=0.0,
        metavar="PIXELS",
        help="elastic deformation strength in patch pixels (default 0: off)",
    )
    t.add_argument("--patience", type=int, default=None, help="early stop after N checks")
    t.add_argument("--val-every", type=int, default=100)
    t.add_argument("--depth", type=int, default=4)
    t.add_argument("--base-channels", type=int, default=16)
    t.add_argument("--name", help="model name stored in the file (default: output stem)")
    t.add_argument("--half", action="store_true", help="store fp16 weights (half the size)")
    t.add_argument("--device", default="auto")
    t.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="network arithmetic; auto: bf16 only where measured faster",
    )
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
    """Run one command; its exit status. Called without ``argv`` it owns the process: SIGINT
    and SIGTERM are handled from the start and ignored once the command has ended, so the
    interpreter's exit cannot be interrupted into a traceback."""
    args = _parser().parse_args(argv)
    from .core import signals
    from .core.errors import UnetLoopError, clean_text, one_line
    from .core.io.atomic import discard_leftovers

    owner = threading.current_thread() is threading.main_thread()
    previous = signals.install() if owner else None
    commands = {
        "segment": _segment,
        "train": _train,
        "evaluate": _evaluate,
        "models": _models,
        "export": _export,
    }
    prefix = f"unet-loop {args.command}"
    try:
        commands[args.command](args)
    except UnetLoopError as exc:
        return _fail(f"{prefix}: error: {clean_text(exc, 500)}")
    except KeyboardInterrupt as exc:
        discard_leftovers()
        # zarr writes through coroutines: one cut off by the signal would warn at exit
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        terminated = isinstance(exc, signals.Terminated)
        print(f"{prefix}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except OSError as exc:  # disk full, permissions, a file vanishing under us
        discard_leftovers()
        return _fail(f"{prefix}: error: {clean_text(one_line(exc), 500)}")
    except MemoryError:
        discard_leftovers()
        return _fail(f"{prefix}: error: out of memory")
    except Exception as exc:  # a bug: still one line, with the details on request
        discard_leftovers()
        if os.environ.get("UNET_LOOP_DEBUG"):
            raise
        print(
            f"{prefix}: internal error: {type(exc).__name__}: {clean_text(exc, 300)} "
            "(set UNET_LOOP_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    finally:
        if owner:
            signals.restore(None if argv is None else previous)
    return 0


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _check_range(name: str, value: float | None, low: float, high: float) -> None:
    from .core.errors import InputError

    if value is not None and not (math.isfinite(value) and low <= value <= high):
        raise InputError(f"{name} must be between {low:g} and {high:g}, got {value:g}")


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name the same file or folder (links and ``..`` resolved)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _segment(args: argparse.Namespace) -> None:
    from .core.errors import InputError
    from .core.inference.batch import segment_file

    _check_range("--tile-size", args.tile_size, 16, MAX_TILE_SIZE)
    _check_range("--batch-size", args.batch_size, 1, MAX_BATCH_SIZE)
    _check_range("--chunk-size", args.chunk_size, 16, MAX_TILE_SIZE)
    if args.scheduler is not None:
        from .core.inference.distributed import check_address

        check_address(args.scheduler)
    elif args.chunk_size is not None:
        raise InputError("--chunk-size needs --scheduler")
    segment_file(
        args.input,
        args.output,
        model=args.model,
        device=args.device,
        precision=args.precision,
        instances=args.instances,
        probabilities=args.probabilities,
        tile_size=args.tile_size,
        batch_size=args.batch_size,
        scheduler=args.scheduler,
        diameter=args.diameter,
        chunk_size=args.chunk_size,
        show_progress=True,
    )


def _model_output(args: argparse.Namespace) -> Path:
    """The model file ``train`` will write, checked before any data is read."""
    from .core.errors import InputError
    from .core.model.modelfile import resolve_model_path
    from .core.model.registry import SUFFIX

    output = Path(args.output).expanduser()
    if output.suffix != SUFFIX:
        output = output.with_name(output.name + SUFFIX)
    if output.is_dir():
        raise InputError(f"cannot write {output}: it is a folder")
    folder = output.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {output}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {output}: permission denied in folder {folder}")
    inputs = [*args.images, *args.labels]
    if args.from_model:
        inputs.append(resolve_model_path(args.from_model))
    for given in inputs:
        if _same_file(given, output):
            raise InputError(f"-o {output} is an input ({given}); choose another output name")
    return output


def _train_options(args: argparse.Namespace):
    """The training settings, checked: a bad option is reported before the data loads."""
    from .core.errors import InputError
    from .core.model.unet import UNetConfig
    from .core.training.train import TrainConfig

    _check_range("--learning-rate", args.learning_rate, 1e-12, MAX_LEARNING_RATE)
    _check_range("--patch-size", args.patch_size, 8, MAX_PATCH_SIZE)
    _check_range("--batch-size", args.batch_size, 1, MAX_BATCH_SIZE)
    _check_range("--elastic", args.elastic, 0, MAX_PATCH_SIZE)
    _check_range("--seed", args.seed, 0, 2**63 - 1)
    if args.batch_size * args.patch_size**2 > MAX_BATCH_PIXELS:
        raise InputError(
            f"--batch-size × --patch-size² is {args.batch_size * args.patch_size**2} pixels, "
            f"over the limit of {MAX_BATCH_PIXELS}: use smaller patches or batches"
        )
    classes = [c.strip() for c in args.classes.split(",")]
    if len(classes) < 2 or "" in classes or len(set(classes)) != len(classes):
        raise InputError(
            f"--classes needs at least two different, non-empty names, got {args.classes!r}"
        )
    if not args.from_model:
        try:
            UNetConfig(num_classes=len(classes), depth=args.depth, base_channels=args.base_channels)
        except ValueError as exc:
            message = str(exc).replace("base_channels", "--base-channels")
            raise InputError(message.replace("depth", "--depth")) from None
    config = TrainConfig(
        iterations=args.iterations,
        patch_size=args.patch_size,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        val_every=args.val_every,
        patience=args.patience,
        device=args.device,
        schedule=args.schedule,
        elastic=args.elastic,
        precision=args.precision,
    )
    return classes, config


def _train(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from .core.errors import InputError
    from .core.evaluation.labelmap import parse_label_map
    from .core.model.modelfile import load_model, new_model, save_model
    from .core.training.datasets import Pairs, load_pairs
    from .core.training.train import train

    if len(args.images) != len(args.labels):
        raise InputError("give one --labels for each --images")
    output = _model_output(args)
    classes, config = _train_options(args)
    label_map = parse_label_map(args.label_map) if args.label_map else None
    several = len(args.images) > 1
    pairs = sum(
        (
            load_pairs(
                i,
                lab,
                label_map,
                prefix=f"{Path(i).parent.name}/" if several else "",
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
            classes,
            in_channels=3 if rgb else 1,
            depth=args.depth,
            base_channels=args.base_channels,
            seed=args.seed,
        )
    model.name = args.name or output.name.removesuffix(".safetensors")
    train_pairs, val_pairs = pairs.select(chosen), pairs.select(val)
    updates = train(
        model,
        train_pairs.images,
        train_pairs.labels,
        config=config,
        val_images=val_pairs.images or None,
        val_labels=val_pairs.labels or None,
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
        images=[_short(i) for i in args.images],
        labels=[_short(lab) for lab in args.labels],
        label_map=args.label_map,
        separate_touching=args.separate_touching,
        slices=args.slices,
        val_slices=args.val_slices,
        train=[train_pairs.names[0], train_pairs.names[-1], len(train_pairs)],
        validation=val_pairs.names,
    )
    path = save_model(final, output, half=args.half)
    print(f"wrote {path}")


def _short(path: str) -> str:
    """The data set's own part of a path (``isbi2012/train-volume.tif``): no machine folders."""
    return "/".join(Path(path).resolve().parts[-2:])


def _evaluate(args: argparse.Namespace) -> None:
    from .core.evaluation.evaluate import evaluate_files

    report = evaluate_files(
        args.prediction,
        args.truth,
        slices=args.slices,
        truth_map=args.truth_map,
        prediction_map=args.prediction_map,
        class_names=args.classes.split(",") if args.classes else None,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())


def _models(args: argparse.Namespace) -> None:
    from .core.model.modelfile import load_model
    from .core.model.registry import shipped_models

    for name, path in shipped_models().items():
        model = load_model(path)
        print(f"{name:16s} classes={','.join(model.class_names)}  {path.stat().st_size >> 10} KiB")


def _export(args: argparse.Namespace) -> None:
    from .core.model.model_zoo import export_model
    from .core.model.modelfile import load_model

    print(f"wrote {export_model(load_model(args.model), args.output, authors=args.author)}")


if __name__ == "__main__":
    sys.exit(main())

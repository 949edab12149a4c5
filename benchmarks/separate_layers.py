"""Several 2D images open as separate layers: does Retrain on one keep the others?

A user opens three fluorescence nuclei test images and two grey blood-cell images as five
2D layers, segments each with the shipped ``nuclei`` model through the real Segment widget,
corrects one blood-cell image (its ground truth painted in) and presses Retrain in the real
Retrain widget. The nuclei images nobody corrected (own kind) and the other blood-cell image
(new kind) are then scored with the model the loop holds, nucleus Dice pooled, at scale 1.

Two ways, side by side in one process, three seeds (which blood-cell images):
- **all segmentations**: every segmentation stays in the viewer, so the round takes the
  other images as its context (what Retrain does);
- **this layer alone**: the other segmentation layers are removed before Retrain (images
  kept), so the round sees only the corrected image, as every round did before it took the
  other layers.

    xvfb-run -a python benchmarks/separate_layers.py [--data DIR] [--threads N]

Prints a table and writes ``benchmarks/results/separate_layers.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch
from _common import (
    add_common_options,
    device_text,
    environment,
    load_nuclei,
    markdown_table,
    pixel_scores,
    publish,
    require,
    run_script,
    split_ids,
)
from _loop_scenarios import wbc_grey

from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.model.devices import get_device

SEEDS = 3
NUCLEI = 3
WAYS = ("all segmentations", "this layer alone")
TIMEOUT_S = 900


def wait(done, what: str) -> None:
    from qtpy.QtWidgets import QApplication

    app, end = QApplication.instance(), time.perf_counter() + TIMEOUT_S
    while not done():
        app.processEvents()
        time.sleep(0.02)
        if time.perf_counter() > end:
            raise SystemExit(f"timed out waiting for {what}")


def nucleus_dice(model, images: list[np.ndarray], truths: list[np.ndarray]) -> float:
    predicted = [predict(image, model).labels for image in images]
    return pixel_scores(predicted, truths, model.class_names)["dice_pooled"]["nucleus"]


def walk(images: dict[str, np.ndarray], corrected: str, truth: np.ndarray, alone: bool):
    """Segment every image, correct ``corrected``, Retrain; returns the session's model after
    the round, the one before it, the round's status line and its seconds."""
    import napari

    from napari_unet_loop.app.session import session_for
    from napari_unet_loop.widgets.retrain_widget import RetrainWidget
    from napari_unet_loop.widgets.segment_widget import SegmentWidget

    home = tempfile.TemporaryDirectory(prefix="unet-loop-layers-")
    # Autosaved corrections go to a throwaway home: a later walk must not reload them.
    os.environ["HOME"] = home.name
    viewer = napari.Viewer(show=False)
    try:
        for name, image in images.items():
            viewer.add_image(image, name=name)
        segment = SegmentWidget(viewer)
        picker = segment.model_picker.combo
        picker.setCurrentIndex(picker.findData("nuclei"))
        segment.device_combo.setCurrentText("cpu")
        for name in images:
            segment.image_combo.setCurrentText(name)
            segment.run()
            wait(lambda: not segment.running, "Segment")
        session = session_for(viewer)
        before = session.model
        layer = viewer.layers[f"{corrected} segmentation"]
        target = truth.astype(layer.data.dtype)
        ys, xs = np.nonzero(layer.data != target)
        layer.data_setitem((ys, xs), target[ys, xs])
        wait(lambda: session.edited_slices(layer.name) == [0], "the edit to register")
        if alone:
            for name in images:
                if name != corrected:
                    viewer.layers.remove(f"{name} segmentation")
        retrain = RetrainWidget(viewer)
        retrain.labels_combo.setCurrentText(layer.name)
        start = time.perf_counter()
        retrain.retrain()
        wait(lambda: not retrain.running, "Retrain")
        return session.model, before, retrain.status.text(), time.perf_counter() - start
    finally:
        viewer.close()
        home.cleanup()


def rows_and_table(seed: int, own: dict, grey: list, truths: list, rows: list, table: list):
    """Both ways for one seed: appends the JSON rows and the table's rows."""
    odd = [int(i) for i in np.random.default_rng(seed).choice(len(grey), 2, False)]
    corrected, other = (f"blood cells {i}" for i in odd)
    images = {name: s.image for name, s in own.items()}
    images |= {corrected: grey[odd[0]], other: grey[odd[1]]}
    for way in WAYS:
        print(f"seed {seed}: {way}…", file=sys.stderr, flush=True)
        model, start, status, seconds = walk(images, corrected, truths[odd[0]], way == WAYS[1])
        own_images = [s.image for s in own.values()]
        own_truth = [s.classes for s in own.values()]
        other_args = ([grey[odd[1]]], [truths[odd[1]]])
        row = {
            "seed": seed,
            "way": way,
            "corrected": corrected,
            "own_before": nucleus_dice(start, own_images, own_truth),
            "own_after": nucleus_dice(model, own_images, own_truth),
            "other_before": nucleus_dice(start, *other_args),
            "other_after": nucleus_dice(model, *other_args),
            "status": status,
            "seconds": seconds,
        }
        rows.append(row)
        table.append(
            [
                f"{corrected} (seed {seed})",
                way,
                f"{row['own_before']:.3f} → {row['own_after']:.3f}",
                f"{row['other_before']:.3f} → {row['other_after']:.3f}",
                f"{seconds:.0f}",
            ]
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, "nuclei/ and wbc/", model_dir=False)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    require(args.data, "nuclei/images", "nuclei/masks", "wbc/dataset1")
    if args.threads:
        torch.set_num_threads(args.threads)
    nuclei = [
        s
        for s in load_nuclei(args.data, split_ids("nuclei-test"))
        if s.image.ndim == 2 and s.image.shape == (256, 256)
    ][:NUCLEI]
    cells = wbc_grey(args.data, None, False)
    grey = [np.rint(image).astype(np.uint8) for image in cells.images]  # as a grey file holds it
    own = {f"nuclei {i}": s for i, s in enumerate(nuclei)}
    rows, table = [], []
    for seed in range(SEEDS):
        rows_and_table(seed, own, grey, cells.truth, rows, table)
    env = environment(get_device("cpu"))
    header = ["corrected", "round sees", "nuclei images", "other blood-cell image", "round (s)"]
    markdown = "\n\n".join(
        [
            "# Retrain with several 2D images open as separate layers",
            f"Measured on {device_text(env)}, through the real widgets. Nucleus Dice before → "
            "after one Retrain on one corrected blood-cell image.",
            markdown_table(header, table),
        ]
    )
    publish(
        "separate_layers",
        False,
        {"benchmark": "separate_layers", "environment": env, "rows": rows},
        markdown,
    )


def main(argv: list[str] | None = None) -> int:
    return run_script("separate_layers.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Inference speed side by side: this package end to end, the bare network, MONAI, a naive loop.

All four segment the same ISBI 2012 stack with the same network (shipped em-membranes, fp32
weights) on the same machine in one run, so their megapixels per second compare directly. This
package and the bare network run in fp32, in bf16 autocast and at ``auto`` (what
``core.model.precision`` picks here); the network also with batch norm folded. The CPU's fp32 and
bf16 matmul rates are measured in the same run, and each method's GFLOP/s is set against them.
Also reported: the network's FLOPs per megapixel, how far tiled inference is from whole-image
inference, and whether the methods agree on the labels (bf16 against fp32 too).
``--device cuda`` adds GPU rows (reduced precision, channels_last, cudnn.benchmark,
torch.compile) against the card's bf16 matmul rate.
Prints Markdown tables and writes benchmarks/results/speed.json/.md.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch
from _common import (
    ISBI_IMAGES,
    BenchmarkError,
    add_common_options,
    cpu_matmul_gflops,
    device_text,
    environment,
    fmt,
    markdown_table,
    model_origin,
    model_path,
    publish,
    require,
    run_script,
)
from torch.utils.flop_counter import FlopCounterMode

from napari_unet_loop.core.inference.batch import segment_file
from napari_unet_loop.core.inference.predict import predict, prepare_slice, ready_network
from napari_unet_loop.core.inference.tiling import padded_length
from napari_unet_loop.core.io.read import read_image
from napari_unet_loop.core.model.devices import get_device, to_device
from napari_unet_loop.core.model.modelfile import Model, load_model
from napari_unet_loop.core.model.precision import cpu_decision, precision_name, resolve_precision

MODEL = "em-membranes"
QUICK_SLICES = 3
DEFAULT_REPEATS = 3
# A 2×2 mosaic of ISBI slices is 1024² px: the default tiles (512, halo 128) overlap there,
# while a 512² slice is a single window and cannot show a tiling error.
MOSAIC_SLICES = (0, 1, 2, 3)
# What a MONAI user reaches for. sliding_window_inference has no default sw_batch_size: 1 is
# the default of monai.inferers.SlidingWindowInferer.
MONAI_ROI, MONAI_OVERLAP, MONAI_MODE, MONAI_SW_BATCH = (256, 256), 0.25, "gaussian", 1
TARGET_VS_NETWORK = 0.85  # end-to-end MP/s ≥ this × network-only
TARGET_VS_MONAI = 1.5  # end-to-end MP/s ≥ this × MONAI
TARGET_TILED = 1e-3  # max |tiled − whole-image| probability
MATMUL_N, MATMUL_REPEATS, MATMUL_PER_TIMING = 8192, 5, 10
CPU_MATMUL_N = 4096
TARGET_AUTO_VS_FP32 = 2.5  # end to end, where the CPU runs bf16 natively
TARGET_BF16_ROOFLINE = 0.30  # network-only bf16 ≥ this × the bf16 matmul rate
TARGET_BF16_AGREEMENT = 0.999  # bf16 labels equal to fp32 labels

METHODS = {
    "end_to_end": (
        "(a) end to end",
        "core.batch.segment_file at its defaults (precision "
        "auto): TIFF in, compressed label TIFF out (read, normalise, network, "
        "softmax, argmax, write)",
    ),
    "end_to_end_fp32": ("(a32) end to end, fp32", "as (a), precision fp32"),
    "end_to_end_bf16": ("(a16) end to end, bf16", "as (a), precision bf16 (autocast)"),
    "network": (
        "(b) network only, fp32",
        "one forward per normalised slice in memory, batch "
        "1, no softmax/argmax/IO; the memory layout (a) uses (channels-last on a CPU)",
    ),
    "network_bf16": ("(b16) network only, bf16", "as (b), under bf16 autocast"),
    "network_folded": (
        "(bF) network only, batch norm folded",
        "as (b), with each batch norm folded into its convolution (core.model.folding)",
    ),
    "network_plain": (
        "(b′) network only, default layout",
        "as (b), with torch's default (contiguous) layout, as (c) and (d) run",
    ),
    "monai": (
        "(c) MONAI",
        "sliding_window_inference, roi 256², overlap 0.25, gaussian, "
        "sw_batch_size 1, + argmax; normalised slices in memory",
    ),
    "naive": (
        "(d) naive loop",
        "tifffile.imread, per slice normalise + forward + argmax, "
        "tifffile.imwrite (uncompressed) at the end",
    ),
}


@dataclass(frozen=True)
class GpuVariant:
    """One network-only GPU configuration; from bf16 on, each row adds one setting."""

    name: str
    amp: torch.dtype | None = None
    channels_last: bool = False
    cudnn_benchmark: bool = False
    compile: bool = False


GPU_VARIANTS = (
    GpuVariant("fp32"),
    GpuVariant("bf16 autocast", torch.bfloat16),
    GpuVariant("fp16 autocast", torch.float16),
    GpuVariant("bf16 + channels_last", torch.bfloat16, True),
    GpuVariant("bf16 + channels_last + cudnn.benchmark", torch.bfloat16, True, True),
    GpuVariant(
        "bf16 + channels_last + cudnn.benchmark + torch.compile", torch.bfloat16, True, True, True
    ),
)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timing covers it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(run: Callable[[], object], repeats: int, device: torch.device):
    """Run once to warm up, then ``repeats`` times: the seconds of each and the last result."""
    run()
    sync(device)
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds, result


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def monai_inferer() -> Callable:
    """MONAI's sliding_window_inference, imported only here: a benchmark-only dependency."""
    try:
        from monai.inferers import sliding_window_inference
    except ImportError:
        raise BenchmarkError(
            "MONAI is not installed (needed by this benchmark only): pip install monai"
        ) from None
    return sliding_window_inference


def slice_source(data: Path, volume: np.ndarray, count: int, folder: Path) -> Path:
    """The ISBI TIFF itself, or its first ``count`` slices written uncompressed to ``folder``."""
    if count == len(volume):
        return data / ISBI_IMAGES
    path = folder / f"isbi-first-{count}.tif"
    tifffile.imwrite(path, volume[:count], photometric="minisblack")  # as the original is stored
    return path


def flops_per_forward(network: torch.nn.Module, shape: tuple[int, ...], device) -> int:
    """FLOPs of one forward (2 × multiply-adds, as torch counts them; convolutions only)."""
    x = torch.zeros(shape, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        network(x)
    return counter.get_total_flops()


def forward_all(network, inputs, device, amp: torch.dtype | None = None) -> None:
    with torch.inference_mode(), autocast(device, amp):
        for x in inputs:
            network(x)


def monai_labels(inferer: Callable, network, inputs) -> np.ndarray:
    with torch.inference_mode():
        return np.stack(
            [
                inferer(
                    x, MONAI_ROI, MONAI_SW_BATCH, network, overlap=MONAI_OVERLAP, mode=MONAI_MODE
                )
                .argmax(dim=1)[0]
                .to(torch.uint8)
                .cpu()
                .numpy()
                for x in inputs
            ]
        )


def naive_loop(source: Path, output: Path, model: Model, network, device) -> np.ndarray:
    """What a user might write by hand: whole stack in, labels collected, one write."""
    stack = tifffile.imread(source)
    labels = []
    with torch.no_grad():
        for image in stack:
            x = torch.from_numpy(model.normalization(image))[None, None].to(device)
            labels.append(network(x).argmax(dim=1)[0].to(torch.uint8).cpu().numpy())
    labels = np.stack(labels)
    tifffile.imwrite(output, labels)
    return labels


def time_methods(source, volume, model, inputs, inferer, repeats, device, folder) -> tuple:
    """Seconds of every timed run per method, and each method's labels.

    (a) gets ``model`` itself; the others get copies of its network, so that the layout (a)
    switches its network to cannot leak into what (b′), (c) and (d) measure.
    """
    outputs = {
        key: folder / f"labels-{key}.tif"
        for key in ("end_to_end", "end_to_end_fp32", "end_to_end_bf16")
    }
    plain = copy.deepcopy(model.network).to(device).eval()
    ours = ready_network(copy.deepcopy(plain), device)
    folded = ready_network(copy.deepcopy(plain), device, fold=True)
    ours_inputs = [to_device(x.cpu(), device) for x in inputs]

    def segment(key: str, precision: str):
        return lambda: segment_file(
            source, outputs[key], model=model, device=str(device), precision=precision
        )

    runs = {
        "end_to_end": segment("end_to_end", "auto"),
        "end_to_end_fp32": segment("end_to_end_fp32", "fp32"),
        "end_to_end_bf16": segment("end_to_end_bf16", "bf16"),
        "network": lambda: forward_all(ours, ours_inputs, device),
        "network_bf16": lambda: forward_all(ours, ours_inputs, device, torch.bfloat16),
        "network_folded": lambda: forward_all(folded, ours_inputs, device),
        "network_plain": lambda: forward_all(plain, inputs, device),
        "monai": lambda: monai_labels(inferer, plain, inputs),
        "naive": lambda: naive_loop(source, folder / "labels-d.tif", model, plain, device),
    }
    seconds, labels = {}, {}
    for key, run in runs.items():
        print(f"timing {METHODS[key][0]}…", file=sys.stderr, flush=True)
        seconds[key], labels[key] = timed(run, repeats, device)
    for key, output in outputs.items():  # read back untimed
        labels[key] = tifffile.imread(output).reshape(volume.shape)
    return seconds, labels


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def whole_image(image: np.ndarray, model: Model, device):
    """Whole-image inference: one window as large as the (padded) slice, fp32."""
    tile = padded_length(max(image.shape[-2:]), model.config.size_multiple)
    return predict(image, model, device=device, tile_size=tile, rgb=False, precision="fp32")


def accuracy_checks(source, volume, full_volume, model, labels, device, folder) -> dict:
    """(a)'s probabilities and labels against whole-image inference; tiling on a mosaic."""
    print("checking accuracy…", file=sys.stderr, flush=True)
    probabilities = folder / "probabilities-a.tif"
    segment_file(
        source,
        folder / "labels-p.tif",
        model=model,
        device=str(device),
        probabilities=probabilities,
    )
    ours = tifffile.imread(probabilities).reshape(len(volume), model.num_classes, *volume.shape[1:])
    whole = whole_image(volume, model, device)
    a, b, c, d = (full_volume[z] for z in MOSAIC_SLICES)
    mosaic = np.block([[a, b], [c, d]])
    tiled = predict(mosaic, model, device=device, rgb=False, precision="fp32")  # default tiles
    whole_mosaic = whole_image(mosaic, model, device)
    ours_labels, monai, naive = labels["end_to_end"], labels["monai"], labels["naive"]
    return {
        "bf16_vs_fp32_labels": agreement(labels["end_to_end_bf16"], labels["end_to_end_fp32"]),
        "end_to_end_vs_whole": {
            "max_abs_probability_difference": max_diff(ours, whole.probabilities.swapaxes(0, 1)),
            "label_agreement": agreement(ours_labels, whole.labels),
        },
        "tiled_vs_whole_mosaic": {
            "mosaic_shape": list(mosaic.shape),
            "max_abs_probability_difference": max_diff(
                tiled.probabilities, whole_mosaic.probabilities
            ),
            "label_agreement": agreement(tiled.labels, whole_mosaic.labels),
        },
        "label_agreement": {
            "a_vs_c": agreement(ours_labels, monai),
            "a_vs_d": agreement(ours_labels, naive),
            "c_vs_d": agreement(monai, naive),
        },
    }


def matmul_tflops(device: torch.device) -> float:
    """The card's dense bf16 matmul rate, best of several timings (TFLOP/s)."""
    a, b, out = (
        torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=torch.bfloat16) for _ in range(3)
    )

    def run():
        for _ in range(MATMUL_PER_TIMING):
            torch.matmul(a, b, out=out)

    seconds, _ = timed(run, MATMUL_REPEATS, device)
    return 2 * MATMUL_N**3 * MATMUL_PER_TIMING / min(seconds) / 1e12


def gpu_variant_seconds(variant: GpuVariant, network, inputs, repeats, device) -> list[float]:
    layout = torch.channels_last if variant.channels_last else torch.contiguous_format
    net = copy.deepcopy(network).to(memory_format=layout)  # leave the shared network as it is
    xs = [x.contiguous(memory_format=layout) for x in inputs]
    if variant.compile:
        net = torch.compile(net)
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = variant.cudnn_benchmark
    try:
        seconds, _ = timed(lambda: forward_all(net, xs, device, variant.amp), repeats, device)
    finally:
        torch.backends.cudnn.benchmark = before
    return seconds


def gpu_section(network, inputs, repeats, device, mp: float, flops_per_mp: float) -> dict:
    """Network-only GPU variants against the bf16 matmul roofline (CUDA only)."""
    print("timing GPU variants…", file=sys.stderr, flush=True)
    tflops = matmul_tflops(device)
    rows = []
    for variant in GPU_VARIANTS:
        try:
            seconds = gpu_variant_seconds(variant, network, inputs, repeats, device)
        except Exception as exc:  # torch.compile depends on the machine's toolchain
            if not variant.compile:
                raise
            rows.append({"variant": variant.name, "error": f"{type(exc).__name__}: {exc}"[:2000]})
            continue
        mp_per_s = mp / min(seconds)
        rows.append(
            {
                "variant": variant.name,
                "seconds": seconds,
                "mp_per_s": mp_per_s,
                "roofline_percent": 100 * flops_per_mp * mp_per_s / (tflops * 1e12),
            }
        )
    return {"matmul_bf16_tflops": tflops, "matmul_size": MATMUL_N, "network_only": rows}


def throughput(
    seconds: dict[str, list[float]], mp: float, flops_per_mp: float, matmul: dict | None
) -> dict:
    """MP/s (best run) per method, its ratios to network-only and to MONAI, its GFLOP/s (the
    network's FLOPs at that rate) and their share of the CPU's fp32 and bf16 matmul rates."""
    rates = {k: mp / min(s) for k, s in seconds.items()}
    rows = {}
    for k, s in seconds.items():
        gflops = flops_per_mp * rates[k] / 1e9
        rows[k] = {
            "seconds": s,
            "best_seconds": min(s),
            "mp_per_s": rates[k],
            "gflops": gflops,
            "vs_network": rates[k] / rates["network"],
            "vs_monai": rates[k] / rates["monai"],
            "of_fp32_matmul": gflops / matmul["fp32_gflops"] if matmul else None,
            "of_bf16_matmul": gflops / matmul["bf16_gflops"] if matmul else None,
        }
    return rows


def targets(rows: dict, accuracy: dict, precision: dict) -> list[dict]:
    tiled = accuracy["tiled_vs_whole_mosaic"]["max_abs_probability_difference"]
    e2e = rows["end_to_end"]
    auto_vs_fp32 = e2e["mp_per_s"] / rows["end_to_end_fp32"]["mp_per_s"]
    bf16_share = rows["network_bf16"]["of_bf16_matmul"]
    agree = accuracy["bf16_vs_fp32_labels"]
    if precision.get("supported"):
        auto = {
            "target": f"auto end to end ≥ {TARGET_AUTO_VS_FP32} × fp32 (bf16 supported)",
            "measured": f"{auto_vs_fp32:.2f} ×",
            "met": auto_vs_fp32 >= TARGET_AUTO_VS_FP32,
        }
    else:
        auto = {
            "target": "auto picks fp32 where the CPU has no native bf16",
            "measured": f"auto → {precision['auto']}, {auto_vs_fp32:.2f} × fp32 (noise)",
            "met": precision["auto"] == "fp32",
        }
    return [
        auto,
        {
            "target": f"network-only bf16 ≥ {TARGET_BF16_ROOFLINE:.0%} of the bf16 matmul rate",
            "measured": "—" if bf16_share is None else f"{bf16_share:.1%}",
            "met": bf16_share is not None and bf16_share >= TARGET_BF16_ROOFLINE,
        },
        {
            "target": f"bf16 labels equal fp32 labels on ≥ {TARGET_BF16_AGREEMENT:.1%} of pixels",
            "measured": f"{agree:.4%}",
            "met": agree >= TARGET_BF16_AGREEMENT,
        },
        {
            "target": f"end-to-end ≥ {TARGET_VS_NETWORK} × network-only",
            "measured": f"{e2e['vs_network']:.2f} ×",
            "met": e2e["vs_network"] >= TARGET_VS_NETWORK,
        },
        {
            "target": f"end-to-end ≥ {TARGET_VS_MONAI} × MONAI",
            "measured": f"{e2e['vs_monai']:.2f} ×",
            "met": e2e["vs_monai"] >= TARGET_VS_MONAI,
        },
        {
            "target": f"tiled within {TARGET_TILED:g} of whole-image",
            "measured": f"{tiled:.1e}",
            "met": tiled <= TARGET_TILED,
        },
    ]


def report(result: dict, env: dict) -> str:
    s, net = result["settings"], result["network"]
    rows, acc = result["throughput"], result["accuracy"]
    parts = [
        "# Inference speed: end to end, network only, MONAI, a naive loop",
        f"Measured on {device_text(env)}. {s['data']}: first {s['slices']} slices "
        f"({s['megapixels']:.2f} MP); {net['model']}, fp32 weights. MP/s from the best of "
        f"{s['repeats']} timed run(s) after one warm-up.",
        f"Network: {net['gflops_per_forward']:.2f} GFLOP per {net['forward_shape']} forward = "
        f"{net['gflops_per_megapixel']:.1f} GFLOP/MP (FlopCounterMode, FLOPs = 2 × "
        f"multiply-adds); network-only runs at {net['achieved_gflops']:.1f} GFLOP/s.",
        precision_text(result["precision"], result["cpu_matmul"]),
        markdown_table(
            [
                "method",
                "what is timed",
                "MP/s",
                "s / slice",
                "× network-only",
                "× MONAI",
                "GFLOP/s",
                "% fp32 matmul",
                "% bf16 matmul",
            ],
            [
                [
                    METHODS[k][0],
                    METHODS[k][1],
                    fmt(r["mp_per_s"], 3),
                    fmt(r["best_seconds"] / s["slices"], 3),
                    fmt(r["vs_network"], 2),
                    fmt(r["vs_monai"], 2),
                    fmt(r["gflops"], 1),
                    percent(r["of_fp32_matmul"]),
                    percent(r["of_bf16_matmul"]),
                ]
                for k, r in rows.items()
            ],
        ),
        markdown_table(
            ["target", "measured", "met"],
            [[t["target"], t["measured"], "yes" if t["met"] else "no"] for t in result["targets"]],
        ),
    ]
    e2e, tiled, agree = (
        acc["end_to_end_vs_whole"],
        acc["tiled_vs_whole_mosaic"],
        acc["label_agreement"],
    )
    mosaic = "×".join(map(str, tiled["mosaic_shape"]))
    parts.append(
        markdown_table(
            ["check", "max abs probability difference", "label agreement"],
            [
                [
                    f"(a) vs whole-image, {s['slices']} slices (512², one window each)",
                    f"{e2e['max_abs_probability_difference']:.1e}",
                    fmt(e2e["label_agreement"], 6),
                ],
                [
                    f"tiled (tile 512, halo 128) vs whole-image, {mosaic} mosaic of slices "
                    f"{MOSAIC_SLICES[0]}-{MOSAIC_SLICES[-1]}",
                    f"{tiled['max_abs_probability_difference']:.1e}",
                    fmt(tiled["label_agreement"], 6),
                ],
                ["(a16) bf16 vs (a32) fp32 labels", "—", fmt(acc["bf16_vs_fp32_labels"], 6)],
                ["(a) vs (c) MONAI labels", "—", fmt(agree["a_vs_c"], 6)],
                ["(a) vs (d) naive-loop labels", "—", fmt(agree["a_vs_d"], 6)],
                ["(c) vs (d) labels", "—", fmt(agree["c_vs_d"], 6)],
            ],
        )
    )
    if result["gpu"] is not None:
        parts += gpu_report(result["gpu"], rows, s["slices"])
    return "\n\n".join(parts)


def percent(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.1f}"


def precision_text(precision: dict, matmul: dict | None) -> str:
    decision = precision["decision"]
    text = f"Precision auto resolves to {precision['auto']} here"
    if decision is not None:
        native = "runs bf16 natively" if decision["supported"] else "has no native bf16"
        text += f": oneDNN says this CPU {native} (torch CPU capability {decision['capability']})"
        if decision["speedup"] is not None:
            text += f"; the calibration measured bf16 {decision['speedup']:.2f} × fp32"
    text += "."
    if matmul is not None:
        text += (
            f" CPU matmul, same run: fp32 {matmul['fp32_gflops']:.1f} GFLOP/s "
            f"({matmul['fp32_size']}²), bf16 {matmul['bf16_gflops']:.1f} GFLOP/s "
            f"({matmul['bf16_size']}²; {matmul['bf16_gflops'] / matmul['fp32_gflops']:.2f} × fp32)."
        )
    return text


def gpu_report(gpu: dict, rows: dict, slices: int) -> list[str]:
    fp32 = gpu["network_only"][0]["mp_per_s"]
    table = [
        [r["variant"], "—", "—", "—", "—", r["error"].splitlines()[0][:200].replace("|", "/")]
        if "error" in r
        else [
            r["variant"],
            fmt(r["mp_per_s"], 2),
            fmt(min(r["seconds"]) / slices, 4),
            fmt(r["mp_per_s"] / fp32, 2),
            fmt(r["roofline_percent"], 2),
            "",
        ]
        for r in gpu["network_only"]
    ]
    bf16 = next(r for r in gpu["network_only"] if r["variant"] == "bf16 autocast")
    e2e = rows["end_to_end"]["mp_per_s"]
    return [
        "## GPU: network only, batch 1",
        f"Dense bf16 matmul ({gpu['matmul_size']}³): {gpu['matmul_bf16_tflops']:.0f} TFLOP/s, "
        "the roofline below (network FLOPs/MP × MP/s ÷ that rate).",
        markdown_table(
            ["variant", "MP/s", "s / slice", "× fp32", "% of bf16 roofline", "error"], table
        ),
        f"End to end (segment_file on CUDA: bf16 autocast, batch 4) runs at "
        f"{100 * e2e / bf16['mp_per_s']:.0f} % of network-only bf16 autocast "
        f"({100 * e2e / fp32:.0f} % of network-only fp32).",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, "isbi2012/", model_dir=False)
    p.add_argument(
        "--slices",
        type=int,
        help=f"use the first N slices of the stack (default: all; {QUICK_SLICES} with --quick)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        help=f"timed runs per method after one warm-up, best kept (default: "
        f"{DEFAULT_REPEATS}; 1 with --quick)",
    )
    p.add_argument("--device", default="cpu", help="device to run on (default: %(default)s)")
    p.add_argument(
        "--matmul-size",
        type=int,
        default=CPU_MATMUL_N,
        help="side of the CPU matmuls timed for the rate rows (default: %(default)s)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_SLICES} slices, 1 repeat, results to speed-quick.*",
    )
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    for name in ("slices", "repeats", "threads", "matmul_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise BenchmarkError(f"--{name} must be at least 1, got {value}")
    require(args.data, ISBI_IMAGES)
    inferer = monai_inferer()  # fail before the long runs, not after
    path = model_path(MODEL, None)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    full_volume = read_image(args.data / ISBI_IMAGES)
    count = args.slices or (QUICK_SLICES if args.quick else len(full_volume))
    if count > len(full_volume):
        raise BenchmarkError(f"--slices {count}: the stack has {len(full_volume)} slices")
    repeats = args.repeats or (1 if args.quick else DEFAULT_REPEATS)
    volume = full_volume[:count]
    model = load_model(path)
    model.network.to(device).eval()
    env = environment(device)
    precision = {
        "auto": precision_name(resolve_precision("auto", device)),
        "decision": cpu_decision() if device.type == "cpu" else None,
    }
    precision["supported"] = (precision["decision"] or {}).get("supported", True)
    matmul = cpu_matmul_gflops(args.matmul_size, repeats) if device.type == "cpu" else None
    inputs = [
        torch.from_numpy(prepare_slice(im, model, rgb=False))[None].to(device) for im in volume
    ]
    shape = tuple(inputs[0].shape)
    flops = flops_per_forward(model.network, shape, device)
    slice_mp = shape[-2] * shape[-1] / 1e6
    mp = count * slice_mp
    with tempfile.TemporaryDirectory(prefix="speed-") as tmp:
        folder = Path(tmp)
        source = slice_source(args.data, full_volume, count, folder)
        seconds, labels = time_methods(
            source, volume, model, inputs, inferer, repeats, device, folder
        )
        accuracy = accuracy_checks(source, volume, full_volume, model, labels, device, folder)
    rows = throughput(seconds, mp, flops / slice_mp, matmul)
    result = {
        "settings": {
            "data": f"ISBI 2012 {Path(ISBI_IMAGES).name}",
            "slices": count,
            "megapixels": mp,
            "repeats": repeats,
            "timing": "best of repeats",
            "threads_pinned": bool(args.threads),
        },
        "network": {
            "model": model_origin(path),
            "forward_shape": "×".join(map(str, shape)),
            "gflops_per_forward": flops / 1e9,
            "gflops_per_megapixel": flops / slice_mp / 1e9,
            "achieved_gflops": flops / slice_mp * rows["network"]["mp_per_s"] / 1e9,
        },
        "throughput": rows,
        "accuracy": accuracy,
        "precision": precision,
        "cpu_matmul": matmul,
        "targets": targets(rows, accuracy, precision),
        "gpu": None,
    }
    if device.type == "cuda":
        result["gpu"] = gpu_section(model.network, inputs, repeats, device, mp, flops / slice_mp)
    markdown = report(result, env)
    payload = {"benchmark": "speed", "quick": args.quick, "environment": env, **result}
    publish("speed", args.quick, payload, markdown)


def main(argv: list[str] | None = None) -> int:
    return run_script("speed.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

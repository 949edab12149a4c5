"""The arithmetic the network runs in: fp32, or autocast to bf16 / fp16. Weights stay as stored.

``auto`` keeps what the GPUs did before (CUDA: bf16 where supported, else fp16; MPS: fp32, not
measured there). On a CPU bf16 pays only with matrix units (Intel AMX, AVX-512 BF16); without
them oneDNN emulates it and it is slower (measured on an AVX2-only AMD EPYC, 2 cores: a training
step 4× slower, inference 11×). So ``auto`` on a CPU asks oneDNN whether bf16 runs natively and
only then times a small U-Net both ways, once per machine, picking bf16 where it is at least
``MIN_SPEEDUP`` faster. The decision is
cached as JSON (keyed by CPU model and torch version) in ``$UNET_LOOP_CACHE_DIR``, else
``$XDG_CACHE_HOME/napari-unet-loop``, else ``~/.cache/napari-unet-loop``.
``$UNET_LOOP_PRECISION`` (fp32, bf16, fp16) replaces ``auto``'s choice; an explicit choice
beats both.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from pathlib import Path

import torch

from ..errors import InputError
from ..io.atomic import atomic_output
from .devices import autocast_dtype

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ENV_PRECISION = "UNET_LOOP_PRECISION"
ENV_CACHE_DIR = "UNET_LOOP_CACHE_DIR"
# bf16 must beat fp32 by this much to be chosen: below it, timing noise could pick either.
MIN_SPEEDUP = 1.2
CACHE_FILE = "precision.json"

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
_lock = threading.Lock()
_decided: dict[str, dict] = {}  # this process's CPU decisions, by cache key

log = logging.getLogger(__name__)


def check_precision(name: str) -> str:
    """``name`` lower-cased; an unknown precision is an ``InputError``."""
    name = str(name).strip().lower()
    if name not in PRECISIONS:
        raise InputError(f"unknown precision {name!r}: choose one of {', '.join(PRECISIONS)}")
    return name


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for an autocast dtype (None is fp32)."""
    return _NAMES[dtype]


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype to autocast to on ``device`` for ``precision``, or None to run in fp32.

    ``auto`` may time the CPU once per machine (about a second; see :func:`cpu_decision`).
    fp16 on a CPU is refused: it is a GPU format, bf16 is the CPU's.
    """
    choice = check_precision(precision)
    if choice == "auto":
        forced = os.environ.get(ENV_PRECISION, "").strip()
        if forced and check_precision(forced) != "auto":
            choice = check_precision(forced)
    if choice == "auto":
        if device.type == "cpu":
            return _DTYPES[cpu_decision()["precision"]]
        return autocast_dtype(device)
    if choice == "fp16" and device.type == "cpu":
        raise InputError("fp16 runs on a GPU only: use bf16 or fp32 on the CPU")
    if choice == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("this GPU has no bf16: use fp16 or fp32")
    return _DTYPES[choice]


def cache_dir() -> Path:
    """Where the per-machine decision is kept."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "napari-unet-loop"


def cpu_model() -> str:
    """The CPU's marketing name where the OS tells it, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def bf16_supported() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX-512 BF16 or AMX), not emulated."""
    if not torch.backends.mkldnn.is_available():
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check is not None and check())


def cpu_decision() -> dict:
    """This machine's CPU precision for ``auto``: cached, else measured now and cached.

    The dict has ``precision`` (fp32 or bf16), ``supported`` (see :func:`bf16_supported`),
    ``fp32_s`` and ``bf16_s`` (a forward pass of the calibration net, None when not timed),
    ``speedup`` and the CPU ``capability`` torch reports.
    """
    key = f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads"
    with _lock:
        if key in _decided:
            return _decided[key]
        path = cache_dir() / CACHE_FILE
        stored = _read_cache(path)
        decision = stored.get(key)
        if not isinstance(decision, dict) or decision.get("precision") not in ("fp32", "bf16"):
            decision = calibrate()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_output(path) as tmp:
                    tmp.write_text(json.dumps({**stored, key: decision}, indent=1))
            except OSError as error:  # a read-only home must not stop segmentation
                log.warning("could not cache the precision decision in %s: %s", path, error)
        _decided[key] = decision
        return decision


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def calibrate(side: int = 256, repeats: int = 3) -> dict:
    """Decide the CPU's precision: bf16 where oneDNN supports it and a small U-Net's forward
    pass runs at least ``MIN_SPEEDUP`` faster under bf16 autocast than in fp32.

    Timed as the best of ``repeats`` alternating runs each, after one warm-up each. Where bf16
    is unsupported nothing is timed: emulated bf16 is always slower (11× for this forward pass
    on the AVX2-only EPYC) and its first call alone takes seconds.
    """
    supported = bf16_supported()
    decision = {
        "precision": "fp32",
        "supported": supported,
        "fp32_s": None,
        "bf16_s": None,
        "speedup": None,
        "capability": torch.backends.cpu.get_cpu_capability(),
    }
    if not supported:
        return decision
    from .unet import UNet, UNetConfig

    torch.manual_seed(0)
    network = UNet(UNetConfig(depth=3, base_channels=16)).eval()
    network = network.to(memory_format=torch.channels_last)
    x = torch.randn(1, 1, side, side).contiguous(memory_format=torch.channels_last)

    def run(dtype: torch.dtype | None) -> float:
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            network(x)
        return time.perf_counter() - start

    best = {None: float("inf"), torch.bfloat16: float("inf")}
    for dtype in best:
        run(dtype)
    for _ in range(repeats):
        for dtype in best:
            best[dtype] = min(best[dtype], run(dtype))
    speedup = best[None] / best[torch.bfloat16]
    decision.update(
        precision="bf16" if speedup >= MIN_SPEEDUP else "fp32",
        fp32_s=round(best[None], 5),
        bf16_s=round(best[torch.bfloat16], 5),
        speedup=round(speedup, 3),
    )
    return decision

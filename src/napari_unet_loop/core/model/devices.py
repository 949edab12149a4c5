"""Pick the torch device (``auto`` resolves cuda, then mps, then cpu) and handle its memory."""

from __future__ import annotations

import torch

from ..errors import DeviceUnavailableError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Devices usable on this machine, best first (``cpu`` is always last)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    found.append("cpu")
    return found


def get_device(name: str | torch.device = "auto") -> torch.device:
    """Resolve ``name`` to a torch device; an unavailable explicit choice is an error."""
    if isinstance(name, torch.device):
        name = str(name)
    name = name.strip().lower()
    if name == "auto":
        return torch.device(available_devices()[0])
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise DeviceUnavailableError(
            f"unknown device {name!r}: choose one of {', '.join(DEVICE_CHOICES)}"
        )
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError("device 'cuda' requested but no CUDA GPU is available")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
    if kind == "mps" and not _mps_available():
        raise DeviceUnavailableError("device 'mps' requested but Apple MPS is not available")
    return torch.device(name)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision to autocast to on ``device``, or None to stay in fp32."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the device ran out of memory.

    CUDA raises ``torch.OutOfMemoryError``; other backends (MPS) raise a plain RuntimeError
    whose message says so.
    """
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error)
    )


def free_cached_memory(device: torch.device) -> None:
    """Hand memory torch has cached on ``device`` back, so a smaller retry can use it."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def memory_format(device: torch.device) -> torch.memory_format:
    """The activation layout that runs fastest on ``device``.

    Channels-last on a CPU, where oneDNN's convolutions prefer it: measured on 2 cores with the
    default net, 0.67× the time of the default layout for inference at 512², 0.74× for a
    training step on 4 × 128² patches. Torch's default elsewhere (not measured there).
    """
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch (B, C, Y, X) on ``device``, in the layout :func:`memory_format` picks."""
    batch = batch.contiguous(memory_format=memory_format(device))
    if device.type == "cuda":
        batch = batch.pin_memory()  # lets the copy below overlap with work already queued
    return batch.to(device, non_blocking=True)

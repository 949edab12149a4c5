"""The models shipped inside the package, found without importing torch.

Listing them is all the widgets need to fill their model menus, and importing torch takes
over a second: doing it while a dock widget opens would freeze the viewer that long.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "models"  # napari_unet_loop/models
SUFFIX = ".safetensors"


def shipped_models() -> dict[str, Path]:
    """Models bundled with the package, by name."""
    return {p.name[: -len(SUFFIX)]: p for p in sorted(SHIPPED_DIR.glob(f"*{SUFFIX}"))}

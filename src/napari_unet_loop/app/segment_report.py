"""What Segment says about a run: its scope, and a result a user would not see (one class).

Plain Python (no Qt): the Segment widget shows these lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .loop import distinct_values


def scope_text(shape: tuple[int, ...], z: int | None) -> str:
    """ "whole image", "all 30 slices" or "slice 4" for a run over ``shape`` (spatial)."""
    if z is not None:
        return f"slice {z}"
    return "whole image" if len(shape) == 2 else f"all {shape[0]} slices"


def one_class_warning(labels: np.ndarray, class_names: Sequence[str]) -> str | None:
    """A warning when every pixel got the same label (0 is transparent in napari: it looks as if
    nothing happened), else None."""
    values = distinct_values(labels)
    if values.size != 1:
        return None
    value = int(values[0])
    what = class_names[value] if value < len(class_names) else f"label {value}"
    return f"Every pixel is {what}: the model may not suit this image."

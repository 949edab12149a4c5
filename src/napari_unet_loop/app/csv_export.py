"""Tables out as CSV files, written atomically (the Dice widget's "Export CSV")."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import InputError
from ..core.io.atomic import atomic_output


def write_csv(path: str | os.PathLike, rows: Sequence[Sequence[object]]) -> Path:
    """Write ``rows`` to a CSV file atomically (temporary file, then rename)."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path

"""The "per round" history: mean Dice per model version, for one ground truth.

Plain Python (no Qt); the session keeps it (``LoopSession.scores``), the Dice widget shows it.
A row belongs to a model version, a ground truth and the class names it was scored with, so
switching the ground truth or to a model with other classes shows only the rows that compare
like with like, under headers with the right class names.
"""

from __future__ import annotations

from collections.abc import Sequence


class RoundHistory:
    """Rows of mean Dice keyed by (ground truth, class names), then by model version."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, tuple[str, ...]], dict[int, list[str]]] = {}

    def record(self, truth: str, version_id: int, label: str, mean_dice: dict[str, float]) -> None:
        """Remember (or replace) the row of one model version scored against ``truth``."""
        key = (truth, tuple(mean_dice))
        row = [label, *(f"{value:.4f}" for value in mean_dice.values())]
        self._rows.setdefault(key, {})[version_id] = row

    @staticmethod
    def header(class_names: Sequence[str]) -> list[str]:
        return ["model version", *(f"mean Dice {name}" for name in class_names)]

    def rows(self, truth: str, class_names: Sequence[str]) -> list[list[str]]:
        """The rows scored against ``truth`` with ``class_names``, oldest first."""
        return list(self._rows.get((truth, tuple(class_names)), {}).values())

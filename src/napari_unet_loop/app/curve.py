"""A Retrain round's training curve: loss per iteration and held-back Dice when scored.

Kept with the model version the round made (``session.ModelVersion.curve``), so stepping
through the history shows how each version was trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Curve:
    """One round's points: ``(iteration, loss)`` and ``(iteration, held-back Dice)``."""

    total: int = 0
    loss: list[tuple[int, float]] = field(default_factory=list)
    dice: list[tuple[int, float]] = field(default_factory=list)

    def add(self, update) -> None:
        """Record a ``core.training.TrainUpdate``."""
        self.total = max(self.total, update.total)
        self.loss.append((update.iteration, float(update.loss)))
        if update.val_dice is not None:
            self.dice.append((update.iteration, float(update.val_dice)))

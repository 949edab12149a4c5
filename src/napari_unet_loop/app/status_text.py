"""What the Retrain dock's status line says: the slices a step works on, a round's progress
and how it ended (no Qt)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np


def slices_text(slices: Sequence[int]) -> str:
    """``slice 3`` or ``slices 0, 1, 5``, for status lines and model history labels."""
    numbers = ", ".join(str(int(z)) for z in slices)
    return f"slice {numbers}" if len(slices) == 1 else f"slices {numbers}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class RetrainReport:
    """The Retrain status while a round runs, and how it ended once it has.

    The held-back corrections are scored every few iterations only; the last score stays on
    show in between. The round keeps its best-scoring weights, so the summary gives the best.
    """

    SMOOTHING = 10  # the loss of the summary is the mean of this many last iterations

    def __init__(self) -> None:
        self.iteration = self.total = 0
        self.elapsed_s = 0.0
        self.last_dice: float | None = None
        self.best_dice: float | None = None
        self.stopped_early = False
        self._losses: deque[float] = deque(maxlen=self.SMOOTHING)

    def add(self, update) -> str:
        """Record one ``core.training.train.TrainUpdate``; returns the live status line."""
        self.iteration, self.total = update.iteration, update.total
        self.elapsed_s, self.stopped_early = update.elapsed_s, update.stopped_early
        self._losses.append(update.loss)
        if update.val_dice is not None:
            self.last_dice = update.val_dice
            self.best_dice = max(update.val_dice, self.best_dice or update.val_dice)
        left = self.elapsed_s / max(self.iteration, 1) * (self.total - self.iteration)
        dice = "" if self.last_dice is None else f" · held-back Dice {self.last_dice:.3f}"
        return (
            f"Iteration {self.iteration}/{self.total} · loss {update.loss:.4f}{dice}"
            f" · ~{left:.0f} s left"
        )

    @property
    def loss(self) -> float | None:
        """Mean loss of the last iterations (a single iteration's loss is noisy)."""
        return float(np.mean(self._losses)) if self._losses else None

    def summary(self, result=None) -> str:
        """E.g. ``60 iterations, 14 s; 0.812 on held-back corrections vs 0.774 before``.

        With the round's ``core.training.rounds.RoundResult`` the guard's verdict is part of it.
        """
        if result is not None:
            text = result.message
        else:
            text = ", ".join([_count(self.iteration, "iteration"), f"{self.elapsed_s:.0f} s"])
        if self.loss is not None:
            text += f", loss {self.loss:.3f}"
        if self.stopped_early:
            text += ", stopped early: the held-back corrections no longer improved"
        return text

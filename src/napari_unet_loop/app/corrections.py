"""Painted corrections: where they are kept on disk between sessions, and the training pairs
a round takes from them (``core.training.corrections``; no torch)."""

from ..core.training.corrections import (
    CorrectionStore,
    default_folder,
    home_folder,
    image_fingerprint,
    training_pairs,
)

__all__ = [
    "CorrectionStore",
    "default_folder",
    "home_folder",
    "image_fingerprint",
    "training_pairs",
]

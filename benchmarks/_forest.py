"""The tool a user would otherwise reach for: ilastik-style pixel classification.

A random forest (scikit-learn) on ``skimage.feature.multiscale_basic_features`` (intensity,
edges and texture at Gaussian scales 1 to 16 px), trained on exactly the pixels a correction
labels. Benchmark-only: scikit-learn is not a dependency of the package.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from _common import BenchmarkError

from napari_unet_loop.core.evaluation.labelmap import IGNORE_INDEX

TREES = 100  # ilastik's default forest size
MAX_SAMPLES = 60_000  # labelled pixels drawn for training (a full dense slice is 262 144)


def features(image: np.ndarray) -> np.ndarray:
    """(Y, X, F) float32 filter features of a grey or RGB image, scaled to its own range."""
    from skimage.feature import multiscale_basic_features

    x = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(x, (1, 99.8))
    x = (x - lo) / max(hi - lo, 1e-6)
    rgb = x.ndim == 3
    return multiscale_basic_features(
        x,
        intensity=True,
        edges=True,
        texture=True,
        sigma_min=1,
        sigma_max=16,
        channel_axis=-1 if rgb else None,
    ).astype(np.float32)


class ForestBaseline:
    """Fit on labelled pixels of some images, predict probabilities of others."""

    def __init__(self, num_classes: int, seed: int = 0) -> None:
        self.num_classes = num_classes
        self.seed = seed
        self._forest = None

    def fit(self, feature_maps: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> None:
        try:
            from sklearn.ensemble import RandomForestClassifier
        except ImportError:
            raise BenchmarkError(
                "scikit-learn is not installed (needed by this benchmark only): "
                'pip install "napari-unet-loop[benchmarks]"'
            ) from None

        xs, ys = [], []
        for f, t in zip(feature_maps, targets, strict=True):
            labelled = t != IGNORE_INDEX
            xs.append(f[labelled])
            ys.append(t[labelled])
        x, y = np.concatenate(xs), np.concatenate(ys)
        if len(y) > MAX_SAMPLES:
            keep = np.random.default_rng(self.seed).choice(len(y), MAX_SAMPLES, replace=False)
            x, y = x[keep], y[keep]
        self._forest = RandomForestClassifier(
            n_estimators=TREES, n_jobs=-1, random_state=self.seed, min_samples_leaf=2
        ).fit(x, y)

    def probabilities(self, feature_map: np.ndarray) -> np.ndarray:
        """(C, Y, X) float32; classes never labelled get probability 0."""
        height, width, count = feature_map.shape
        known = self._forest.predict_proba(feature_map.reshape(-1, count))
        out = np.zeros((self.num_classes, height * width), dtype=np.float32)
        out[self._forest.classes_.astype(int)] = known.T
        return out.reshape(self.num_classes, height, width)

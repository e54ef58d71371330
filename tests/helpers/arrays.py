"""Synthetic embeddings for the metric tests (re-exported by tests/helpers/__init__.py).

Every maker draws from its own ``numpy.random.default_rng(seed)``, in a fixed order, so a
test's data is the same on every run.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Embeddings(NamedTuple):
    X: np.ndarray
    labels: np.ndarray | None  # None unless asked for
    views: tuple[np.ndarray, np.ndarray] | None  # two noisy copies of X, None unless asked for


def embeddings(n: int, d: int, *, scales: float | np.ndarray = 1.0, offset: float = 0.0, classes: int = 0,
               view_noise: float = 0.0, seed: int = 0) -> Embeddings:
    """Gaussian points ``N(0, 1) * scales + offset``, then labels and two noisy views when asked.

    ``scales`` per dimension gives a chosen spectrum; ``classes`` labels are drawn at random;
    the views are ``X + view_noise * N(0, 1)``.

    Returns:
        The points, the labels (None unless ``classes``) and the views (None unless ``view_noise``).
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * scales + offset
    labels = rng.integers(0, classes, n) if classes else None
    views = (X + view_noise * rng.normal(size=X.shape), X + view_noise * rng.normal(size=X.shape)) if view_noise else None
    return Embeddings(X, labels, views)


def blobs(n: int, d: int, k: int, *, spread: float = 5.0, balanced: bool = False, noise: float | np.ndarray = 1.0,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` Gaussian clusters and their labels.

    Centres ``N(0, spread**2)``, labels drawn at random (``balanced``: ``i mod k``), unit noise
    times ``noise`` (per dimension if an array).

    Returns:
        ``(points, labels)``.
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=spread, size=(k, d))
    labels = np.arange(n) % k if balanced else rng.integers(0, k, n)
    return centers[labels] + rng.normal(size=(n, d)) * noise, labels

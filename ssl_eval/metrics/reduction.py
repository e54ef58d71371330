"""Low-dimensional reductions of an embedding matrix: PCA, and UMAP where umap-learn is installed.

Used by ``entropy_z3`` (the paper's H(Z_3): entropy of a 3-d reduction) and by clustering
with ``reduce="umap"``. Both reductions are deterministic for a given ``random_state``:

* ``pca_reduce``: the top principal components of the column-centered rows (float64 SVD),
  each component's sign fixed so that its largest-magnitude loading is positive. Scores
  keep the embedding's units, so an embedding scaled by c gives scores scaled by c.
* ``umap_reduce``: ``umap.UMAP(n_components=dims, n_neighbors=15, min_dist=0.1,
  metric="euclidean", random_state=random_state)`` -- umap-learn's defaults with a fixed
  seed, which also makes it single-threaded and reproducible on one machine. Its output
  scale is set by the optimisation (``min_dist``, ``spread``), not by the embedding's units.

umap-learn is an optional dependency (``pip install "ssl-eval[umap]"``): importing it takes
about 20 s and the first fit in each process compiles its numba kernels (about 90 s on a
busy 2-core machine); see docs/metrics.md for the measurements. The last few UMAP results
are kept in memory so that clustering and entropy_z3 of one checkpoint, computed in one
process with the same seed and dimension, pay for one fit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict

import numpy as np

from ssl_eval.common.threads import quiet_known_warnings
from ssl_eval.metrics.options import REDUCTIONS  # defined with the options that name them

__all__ = ["REDUCTIONS", "UMAP_PARAMS", "pca_reduce", "reduce", "umap_available", "umap_reduce"]

UMAP_PARAMS = {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean"}
_CACHE: OrderedDict[tuple[str, tuple[int, ...], int, int], np.ndarray] = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()  # tasks on threads share the cache: look up, insert and evict under it


def umap_available() -> bool:
    """Whether umap-learn can be imported (checked without importing it).

    Returns:
        True when the ``umap`` module is installed.
    """
    return importlib.util.find_spec("umap") is not None


def pca_reduce(X: np.ndarray, dims: int) -> np.ndarray:
    """Scores of the rows of X on the top ``min(dims, D, N)`` principal components (signs fixed).

    Args:
        X: (N, D) array.
        dims: number of components wanted.

    Returns:
        (N, min(dims, D, N)) float64 scores, in the embedding's units.
    """
    X = np.asarray(X, dtype=np.float64)
    centered = X - X.mean(axis=0)
    dims = min(dims, X.shape[0], X.shape[1])
    u, s, vt = np.linalg.svd(centered, full_matrices=False)
    vt = vt[:dims]
    signs = np.sign(vt[np.arange(dims), np.abs(vt).argmax(axis=1)])
    signs[signs == 0] = 1.0
    return centered @ (vt * signs[:, None]).T


def umap_reduce(X: np.ndarray, dims: int, *, random_state: int) -> np.ndarray:
    """UMAP of the rows of X to ``dims`` dimensions with a fixed seed (see the module doc).

    Args:
        X: (N, D) array, N > dims + 1.
        dims: output dimension.
        random_state: UMAP's seed (also makes it single-threaded and reproducible).

    Returns:
        (N, dims) float64 array (a copy; the last few results are cached in memory).

    Raises:
        ImportError: umap-learn is not installed.
    """
    if not umap_available():
        raise ImportError("umap-learn is not installed; install it with "
                          "pip install 'ssl-eval[umap]' or choose the 'pca' reduction.")
    X = np.ascontiguousarray(X, dtype=np.float32)
    key = (hashlib.sha1(X.tobytes(), usedforsecurity=False).hexdigest(), X.shape, dims, int(random_state))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key].copy()
    import umap  # optional and slow to import: only when asked for

    quiet_known_warnings()  # "n_jobs overridden by random_state", small-N notes
    with np.errstate(all="ignore"):
        model = umap.UMAP(n_components=dims, random_state=random_state,
                          n_neighbors=min(UMAP_PARAMS["n_neighbors"], X.shape[0] - 1),
                          min_dist=UMAP_PARAMS["min_dist"], metric=UMAP_PARAMS["metric"])
        Z = np.asarray(model.fit_transform(X), dtype=np.float64)
    with _CACHE_LOCK:
        _CACHE[key] = Z
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return Z.copy()


def reduce(X: np.ndarray, method: str, dims: int, *, random_state: int) -> tuple[np.ndarray, str]:
    """Reduce the rows of X with ``method``; ``"umap"`` falls back to ``"pca"`` when umap-learn is not installed.

    Args:
        X: (N, D) array.
        method: ``"pca"`` or ``"umap"``.
        dims: output dimension.
        random_state: seed of the UMAP fit.

    Returns:
        (reduced rows, the method that ran: ``"pca"`` or ``"umap"``).

    Raises:
        ValueError: ``method`` is not one of :data:`REDUCTIONS`.
    """
    if method not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {method!r}.")
    if method == "umap" and umap_available() and X.shape[0] > dims + 1:
        return umap_reduce(X, dims, random_state=random_state), "umap"
    return pca_reduce(X, dims), "pca"

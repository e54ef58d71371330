"""Entropy of the embedding distribution, with two named estimators.

* ``entropy_gaussian``: differential entropy of a Gaussian with the sample covariance
  (ddof=1), ``0.5 * logdet(2 pi e (Cov + ridge I))``. The ridge is
  ``1e-6 * trace(Cov) / D + 1e-12``: relative, so the estimate stays scale-covariant, and
  floored so a collapsed embedding gives a finite (very low) value instead of -inf.
* ``entropy_knn``: Kozachenko-Leonenko, ``psi(N) - psi(k) + log V_D + (D/N) sum log eps_i``
  with ``eps_i`` the Euclidean distance from point i to its k-th nearest other point and
  ``V_D = pi^(D/2) / Gamma(D/2 + 1)``. Zero distances (duplicate points) are floored at
  1e-12 and flagged ``"duplicate_points"``.

* ``entropy_z3``: the paper's H(Z_3) as we infer it (its body is not available to us; see
  docs/metrics.md): the rows are reduced to Z_3, 3 dimensions (``reduction.reduce``: UMAP
  with a fixed seed, or PCA), and the Kozachenko-Leonenko estimate above (``knn_k``
  neighbours) of Z_3 is converted to bits (divided by ln 2). The reduction actually used
  is returned beside the value and kept in the record (``details``).

The same group reports the intrinsic dimension (``id_twonn``, ``id_mle``; see ``dimension``)
of the same rows as entropy_knn (at most ``max_points``): both are nearest-neighbour
statistics of the distribution's local spread.

Direction: the paper finds entropy falls as training goes for SimCLR and MoCo-v2 and rises
for SimSiam, so the registry marks both ``higher_is_better=False``; read it per family.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma, gammaln
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from ssl_eval.common.validation import check_matrix
from ssl_eval.metrics.dimension import intrinsic_dimension_metrics
from ssl_eval.metrics.reduction import reduce

__all__ = ["Z3_DIMS", "entropy_metrics", "entropy_z3", "gaussian_entropy", "knn_entropy"]

RIDGE_RELATIVE = 1e-6
RIDGE_FLOOR = 1e-12
DISTANCE_FLOOR = 1e-12
_BLOCK_ROWS = 8192
Z3_DIMS = 3


def _covariance(X: np.ndarray) -> np.ndarray:
    """Sample covariance (ddof=1), accumulated over row blocks in float64."""
    n, d = X.shape
    mean = np.zeros(d)
    for start in range(0, n, _BLOCK_ROWS):
        mean += X[start:start + _BLOCK_ROWS].astype(np.float64).sum(axis=0)
    mean /= n
    cov: np.ndarray = np.zeros((d, d))
    for start in range(0, n, _BLOCK_ROWS):
        block = X[start:start + _BLOCK_ROWS].astype(np.float64) - mean
        cov += block.T @ block
    return cov / (n - 1)


def gaussian_entropy(X: np.ndarray) -> float:
    """Gaussian differential entropy (nats) of the rows of X, with the relative ridge of the module doc.

    Args:
        X: (N, D) float array, N >= 2.

    Returns:
        The entropy in nats (NaN only if the ridged covariance were not positive definite).

    Raises:
        ValueError: X is not 2-D or has fewer than 2 rows.
    """
    X = check_matrix(X, min_rows=2, rows_reason="the covariance of fewer points is undefined", allow_non_finite=True)
    cov = _covariance(X)
    d = cov.shape[0]
    ridge = RIDGE_RELATIVE * float(np.trace(cov)) / d + RIDGE_FLOOR
    sign, logdet = np.linalg.slogdet(cov + ridge * np.eye(d))
    if sign <= 0:  # cannot happen for a PSD matrix plus a positive ridge; be defined anyway
        return float("nan")
    return float(0.5 * (d * np.log(2.0 * np.pi * math.e) + logdet))


def knn_entropy(X: np.ndarray, *, k: int = 3) -> tuple[float, bool]:
    """Kozachenko-Leonenko entropy (nats) of the rows of X.

    Args:
        X: (N, D) float array, N > k.
        k: the neighbour whose distance is used (k-th nearest other point).

    Returns:
        (entropy in nats, whether some points had a duplicate at distance 0).

    Raises:
        ValueError: X is not 2-D or has at most k rows.
    """
    X = check_matrix(X, min_rows=k + 1, rows_reason=f"the k={k} nearest neighbours of each point need more than k={k} rows; or pass a smaller k",
                     non_finite_fix="distances to them are undefined; drop or fix the non-finite rows first")
    n, d = X.shape
    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    # The k+1 nearest include the point itself at distance 0, so column k is the k-th other.
    dist, _ = nn.kneighbors(X, n_neighbors=k + 1)
    eps = dist[:, k].astype(np.float64)
    duplicates = bool((eps <= 0.0).any())
    eps = np.maximum(eps, DISTANCE_FLOOR)
    log_unit_ball = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1.0)
    value = digamma(n) - digamma(k) + log_unit_ball + d * float(np.mean(np.log(eps)))
    return float(value), duplicates


def entropy_z3(X: np.ndarray, *, reduction: str = "pca", k: int = 3,
               random_state: int = 0) -> tuple[float, str, bool]:
    """H(Z_3): Kozachenko-Leonenko entropy, in bits, of the rows of X reduced to 3 dimensions (fewer if D < 3).

    Args:
        X: (N, D) float array, N > k.
        reduction: ``"pca"`` or ``"umap"`` (falls back to PCA without umap-learn).
        k: the Kozachenko-Leonenko neighbour.
        random_state: seed of the reduction.

    Returns:
        (H(Z_3) in bits, the reduction used, whether some points were duplicates).

    Raises:
        ValueError: an unknown reduction, or X with at most k rows.
    """
    Z, used = reduce(X, reduction, Z3_DIMS, random_state=random_state)
    nats, duplicates = knn_entropy(Z, k=k)
    return nats / np.log(2.0), used, duplicates


def entropy_metrics(X: np.ndarray, *, knn_k: int = 3, max_points: int | None = None,
                    z3_reduction: str = "pca", random_state: int = 0,
                    details: dict[str, str] | None = None) -> tuple[dict[str, float], list[str]]:
    """entropy_gaussian (all points); entropy_knn, entropy_z3, id_twonn, id_mle (at most ``max_points`` points).

    Args:
        X: (N, D) float array of embeddings, finite (the registry checks).
        knn_k: the Kozachenko-Leonenko neighbour.
        max_points: the k-NN estimates use at most this many random rows; None: all.
        z3_reduction: ``"pca"`` or ``"umap"`` for entropy_z3.
        random_state: seed of the subsample and the reduction.
        details: when given, receives ``entropy_z3_reduction``: the reduction used.

    Returns:
        (metric name -> value, flags): NaN where undefined, explained by the flags
        ``collapsed``, ``n_lt_2``, ``n_le_knn_k``, ``umap_unavailable``, ``duplicate_points``
        and the ``id_*`` flags of :mod:`ssl_eval.metrics.dimension`.
    """
    nan = float("nan")
    flags: list[str] = []
    values = {"entropy_gaussian": nan, "entropy_knn": nan, "entropy_z3": nan, "id_twonn": nan, "id_mle": nan}
    n = X.shape[0]
    if n >= 2 and float(np.ptp(X, axis=0).max()) == 0.0:
        flags.append("collapsed")
    if n >= 2:
        values["entropy_gaussian"] = gaussian_entropy(X)
    else:
        flags.append("n_lt_2")
    if max_points is not None and n > max_points:
        idx = check_random_state(random_state).choice(n, max_points, replace=False)
        X = X[np.sort(idx)]
    if X.shape[0] > knn_k:
        values["entropy_knn"], duplicates = knn_entropy(X, k=knn_k)
        values["entropy_z3"], used, duplicates_z3 = entropy_z3(
            X, reduction=z3_reduction, k=knn_k, random_state=random_state)
        if details is not None:
            details["entropy_z3_reduction"] = used
        if used != z3_reduction:
            flags.append("umap_unavailable")
        if duplicates or duplicates_z3:
            flags.append("duplicate_points")
    else:
        flags.append("n_le_knn_k")
    id_values, id_flags = intrinsic_dimension_metrics(X)
    values.update(id_values)
    flags += [flag for flag in id_flags if flag not in flags]
    return values, flags

"""Intrinsic dimension of the embedding, by two nearest-neighbour estimators.

* ``id_twonn`` (Facco, d'Errico, Rodriguez & Laio 2017, Sci. Rep. 7:12140): for each point,
  mu_i = r2_i / r1_i, the distances to its second and first nearest other points. Under
  the model mu is Pareto with exponent d; we report the maximum-likelihood estimate
  ``d = N / sum_i log mu_i`` over all N points (not the paper's linear fit of
  -log(1 - F(mu)) against log mu with the top 10% discarded).
* ``id_mle`` (Levina & Bickel 2004, NIPS), k = :data:`ID_MLE_K` neighbours: per point,
  ``m_i^-1 = 1/(k-1) sum_{j<k} log(T_k(x_i) / T_j(x_i))`` with T_j the distance to the j-th
  nearest other point; averaged as MacKay & Ghahramani (2005) suggest, over the *inverse*
  estimates: ``d = 1 / mean_i m_i^-1`` (averaging m_i itself is biased upwards).

Both read one k-nearest-neighbour query (scikit-learn ``NearestNeighbors``, which works in
row chunks: never an N x N matrix); the distances of the found neighbours are then
recomputed exactly from the rows, so the values do not depend on the BLAS rounding of the
neighbour search. Both are Euclidean, translation-, rotation- and scale-invariant.

Duplicates: a duplicate row has r1 = 0 (log mu and log(T_k/T_1) infinite), so duplicate rows
are kept once (``np.unique``) before the neighbours are searched, and the flag
``"duplicate_points"`` says so. Undefined cases give NaN and a flag: ``"id_n_lt_3"`` (fewer than
3 distinct rows: TwoNN needs two neighbours), ``"id_n_le_k"`` (at most k distinct rows: no
k-th neighbour for the MLE), ``"id_undefined"`` (every ratio is 1, e.g. all neighbours
equidistant: the estimate would be infinite).
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

__all__ = ["ID_MLE_K", "intrinsic_dimension_metrics", "levina_bickel", "neighbour_distances", "twonn"]

#: Neighbours of the Levina-Bickel estimator (the value Levina & Bickel and MacKay &
#: Ghahramani's note use as a middle of the k = 10..20 range they report stable).
ID_MLE_K = 20
_BLOCK_ELEMENTS = 1 << 22


def neighbour_distances(X: np.ndarray, k: int) -> np.ndarray:
    """(N, k) sorted Euclidean distances from each row to its k nearest other rows.

    Args:
        X: (N, D) finite float array, N > k.
        k: neighbours per row.

    Returns:
        The distances, float64, each row ascending.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    _, idx = NearestNeighbors(n_neighbors=k).fit(X).kneighbors()  # excludes each row itself
    dist = np.empty((n, k))
    step = max(1, _BLOCK_ELEMENTS // max(1, k * d))
    for start in range(0, n, step):
        rows = slice(start, start + step)
        dist[rows] = np.linalg.norm(X[idx[rows]] - X[rows, None, :], axis=2)
    dist.sort(axis=1)
    return dist


def twonn(dist: np.ndarray) -> float:
    """TwoNN maximum-likelihood intrinsic dimension N / sum log(r2 / r1).

    Args:
        dist: (N, >=2) sorted neighbour distances of distinct points (r1 > 0).

    Returns:
        The estimate, or NaN when every ratio is 1.
    """
    total = float(np.sum(np.log(dist[:, 1] / dist[:, 0])))
    return dist.shape[0] / total if total > 0.0 else float("nan")


def levina_bickel(dist: np.ndarray, k: int = ID_MLE_K) -> float:
    """Levina-Bickel MLE with k neighbours, inverse estimates averaged (MacKay & Ghahramani).

    Args:
        dist: (N, >=k) sorted neighbour distances of distinct points (T_1 > 0).
        k: neighbours used.

    Returns:
        1 / mean_i [1/(k-1) sum_{j<k} log(T_k / T_j)], or NaN when that mean is 0.
    """
    logs = np.log(dist[:, :k])
    inverse = (logs[:, k - 1:k] - logs[:, :k - 1]).sum(axis=1) / (k - 1)
    mean = float(inverse.mean())
    return 1.0 / mean if mean > 0.0 else float("nan")


def intrinsic_dimension_metrics(X: np.ndarray, *, k: int = ID_MLE_K) -> tuple[dict[str, float], list[str]]:
    """id_twonn and id_mle of the distinct rows of X (see the module doc for flags).

    Args:
        X: (N, D) finite float array.
        k: neighbours of the Levina-Bickel estimator.

    Returns:
        (metric name -> value, flags): NaN where undefined.
    """
    nan = float("nan")
    values = {"id_twonn": nan, "id_mle": nan}
    flags: list[str] = []
    unique = np.unique(np.asarray(X, dtype=np.float64), axis=0)
    if unique.shape[0] < X.shape[0]:
        flags.append("duplicate_points")
    n = unique.shape[0]
    if n < 3:
        return values, [*flags, "id_n_lt_3"]
    dist = neighbour_distances(unique, min(k, n - 1))
    values["id_twonn"] = twonn(dist)
    if n > k:
        values["id_mle"] = levina_bickel(dist, k)
    else:
        flags.append("id_n_le_k")
    if any(np.isnan(v) for name, v in values.items() if name == "id_twonn" or n > k):
        flags.append("id_undefined")
    return values, flags

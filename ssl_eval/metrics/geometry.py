"""Geometry of the embedding on the unit sphere, and the two view-based metrics.

* ``uniformity`` (Wang & Isola 2020): log mean_{i<j} exp(-2 ||z_i - z_j||^2), z = x/||x||,
  over row blocks (never N x N); on at most ``max_points`` random rows if given.
* ``norm_std`` (SimSiam): mean over dimensions of the std (ddof=0) of z. A healthy
  embedding gives about 1/sqrt(D); below 0.1/sqrt(D) the flag ``"collapsed"`` is set.
* ``alignment`` (Wang & Isola 2020, alpha = 2): mean ||z1_i - z2_i||^2 of normalised views.
* ``lidar`` (Thilak et al. 2024): image i is a class whose samples are its view embeddings
  (here q = 2: views[0][i], views[1][i]). With class means mu_i and grand mean mu,
  Sb = 1/(n-1) sum_i (mu_i - mu)(mu_i - mu)^T,
  Sw = 1/(n (q-1)) sum_i sum_j (e_ij - mu_i)(e_ij - mu_i)^T + 1e-4 I,
  lambda = eigenvalues of Sw^-1/2 Sb Sw^-1/2, p = lambda / sum(lambda) + 1e-8,
  lidar = exp(-sum p log p). The clean embeddings X are not samples of the classes.

A zero row cannot be normalised: it stays the zero vector and the flag ``"zero_norm"`` is set.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["alignment", "geometry_metrics", "lidar", "lidar_matrix", "l2_normalize", "norm_std",
           "uniformity"]

LIDAR_DELTA = 1e-4
LIDAR_EPS = 1e-8
_BLOCK_ELEMENTS = 1 << 22


def l2_normalize(X: np.ndarray) -> tuple[np.ndarray, bool]:
    """Rows scaled to unit norm (float64); zero rows stay zero.

    Args:
        X: (N, D) array.

    Returns:
        (Z, had_zero_rows): the (N, D) float64 normalised rows, and whether any row was zero.
    """
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    zero = norms == 0.0
    return X / np.where(zero, 1.0, norms), bool(zero.any())


def uniformity(Z: np.ndarray, *, t: float = 2.0) -> float:
    """Log of the mean over pairs i<j of exp(-t ||z_i - z_j||^2), in row blocks (never N x N).

    Args:
        Z: (N, D) float array of normalised rows, N >= 2.
        t: the kernel's scale (2 in Wang & Isola 2020).

    Returns:
        The uniformity (<= 0; lower is more uniform).

    Raises:
        ValueError: fewer than 2 rows.
    """
    n = Z.shape[0]
    if n < 2:
        raise ValueError(f"uniformity needs at least 2 rows, got {n}; embed more samples.")
    sq_norms = np.einsum("ij,ij->i", Z, Z)
    block = max(1, _BLOCK_ELEMENTS // n)
    total = 0.0
    for start in range(0, n - 1, block):
        stop = min(start + block, n - 1)
        cols = slice(start + 1, n)  # pairs (i, j) with j > i >= start
        sq = sq_norms[start:stop, None] + sq_norms[None, cols] - 2.0 * (Z[start:stop] @ Z[cols].T)
        np.maximum(sq, 0.0, out=sq)
        kernel = np.exp(-t * sq, out=sq)
        # keep j > i: row r (i = start + r) against column c (j = start + 1 + c) needs c >= r,
        # so drop the strictly lower triangle of the leading square
        rows = stop - start
        total += float(kernel.sum()) - float(np.tril(kernel[:, :rows], -1).sum())
    return float(np.log(total / (n * (n - 1) / 2.0)))


def norm_std(Z: np.ndarray) -> float:
    """Mean over dimensions of the per-dimension std (ddof=0) of normalised rows.

    Args:
        Z: (N, D) float array of normalised rows.

    Returns:
        The mean std (about 1/sqrt(D) for a healthy embedding).
    """
    return float(np.std(Z, axis=0).mean())


def alignment(Z1: np.ndarray, Z2: np.ndarray) -> float:
    """Mean squared distance between normalised view pairs (alpha = 2).

    Args:
        Z1: (N, D) normalised embeddings of the first views.
        Z2: (N, D) normalised embeddings of the second views, row i the same image as in Z1.

    Returns:
        mean_i ||Z1_i - Z2_i||^2, in [0, 4].
    """
    return float(np.mean(np.sum((Z1 - Z2) ** 2, axis=1)))


def lidar_matrix(views: tuple[np.ndarray, ...], *, delta: float = LIDAR_DELTA) -> np.ndarray:
    """Sw^-1/2 Sb Sw^-1/2 of q >= 2 view arrays, row i = image i (see the module doc).

    Args:
        views: q arrays of shape (n, D), one per view.
        delta: ridge added to the within-class scatter Sw.

    Returns:
        The (D, D) float64 matrix whose eigenvalues LiDAR uses.

    Raises:
        ValueError: fewer than 2 images or 2 views.
    """
    stack = np.stack([np.asarray(v, dtype=np.float64) for v in views], axis=1)  # (n, q, D)
    n, q, d = stack.shape
    if n < 2 or q < 2:
        raise ValueError(f"lidar needs at least 2 images and 2 views each, got {n} images and "
                         f"{q} views; embed more images or views.")
    class_means = stack.mean(axis=1)
    centered_means = class_means - class_means.mean(axis=0)
    between = centered_means.T @ centered_means / (n - 1)
    within_dev = (stack - class_means[:, None, :]).reshape(n * q, d)
    within = within_dev.T @ within_dev / (n * (q - 1)) + delta * np.eye(d)
    w_eig, w_vec = np.linalg.eigh(within)
    inv_sqrt = (w_vec / np.sqrt(w_eig)) @ w_vec.T
    return inv_sqrt @ between @ inv_sqrt


def lidar(views: tuple[np.ndarray, ...], *, delta: float = LIDAR_DELTA,
          eps: float = LIDAR_EPS) -> float:
    """LiDAR of q >= 2 view-embedding arrays of shape (n, D), row i = image i.

    Args:
        views: q arrays of shape (n, D), n >= 2.
        delta: ridge added to the within-class scatter.
        eps: added to each normalised eigenvalue before the entropy (1e-8 in the paper).

    Returns:
        LiDAR, or NaN when the matrix has no positive eigenvalue.

    Raises:
        ValueError: fewer than 2 images or 2 views (from :func:`lidar_matrix`).
    """
    lam = np.clip(np.linalg.eigvalsh(lidar_matrix(views, delta=delta)), 0.0, None)
    total = float(lam.sum())
    if not total > 0.0:
        return float("nan")
    p = lam / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def geometry_metrics(X: np.ndarray, *, views: tuple[np.ndarray, np.ndarray] | None = None,
                     max_points: int | None = None,
                     random_state: int = 0) -> tuple[dict[str, float], list[str]]:
    """The geometry metrics: uniformity and norm_std of X; alignment and lidar of the views when given.

    Args:
        X: (N, D) float array of embeddings.
        views: two (n, D) arrays of view embeddings (row i = image i), or None.
        max_points: compute uniformity on at most this many random rows; None uses all.
        random_state: seed of that subsample.

    Returns:
        (metric name -> value, flags): NaN where a metric cannot be computed, explained by the
        flags ``"zero_norm"``, ``"collapsed"`` and ``"n_lt_2"``.
    """
    nan = float("nan")
    flags: list[str] = []
    values = {"uniformity": nan, "norm_std": nan, "alignment": nan, "lidar": nan}
    Z, zero = l2_normalize(X)
    if zero:
        flags.append("zero_norm")
    n, d = Z.shape
    if n >= 2:
        values["norm_std"] = norm_std(Z)
        if values["norm_std"] < 0.1 / np.sqrt(d):
            flags.append("collapsed")
        Zu = Z
        if max_points is not None and n > max_points:
            idx = check_random_state(random_state).choice(n, max_points, replace=False)
            Zu = Z[np.sort(idx)]
        values["uniformity"] = uniformity(Zu)
    else:
        flags.append("n_lt_2")
    if views is not None:
        Z1, zero1 = l2_normalize(views[0])
        Z2, zero2 = l2_normalize(views[1])
        if zero1 or zero2:
            flags.append("zero_norm")
        values["alignment"] = alignment(Z1, Z2)
        if Z1.shape[0] >= 2:
            values["lidar"] = lidar((views[0], views[1]))
            if np.isnan(values["lidar"]):
                flags.append("collapsed")
        else:
            flags.append("n_lt_2")
    return values, flags

"""Peer implementations' conventions, computed from our own spectra.

Users compare ssl-eval's numbers with those of reptrix (PyPI ``reptrix`` 0.1.0: RankMe,
alpha-ReQ, LiDAR, by the alpha-ReQ authors' group) and of stable-pretraining (PyPI
``stable-pretraining`` 0.1.8: RankMe and LiDAR callbacks). On the same embeddings they
disagree with ours because each defines the metric differently; every function here takes
the spectrum or matrix ssl-eval already computes and applies the peer's convention, so the
peer's number is reproduced (docs/metrics.md, "Compared with peer implementations", shows
each to 1e-6 on stored embeddings; tests/core/test_metrics_peers.py checks the formulas and,
where reptrix is installed, the package itself).

reptrix (``reptrix/utils.py``, ``rankme.py``, ``alpha.py``, ``lidar.py``):

* RankMe: eigenvalues of the *centered* covariance (``PCA.explained_variance_ratio_``,
  at most 2048), i.e. squared singular values, not singular values; p = lam / sum + 1e-7.
* alpha-ReQ: the same normalised eigenvalues; weighted least squares (weights 1 / i,
  float32) of log lam_i = c - alpha log i over ranks i = 11 .. 100 only (indices 10..99);
  R^2 over ranks 12 .. 500 (or .. n - 10 when fewer than 512 eigenvalues) against the
  fitted line. Needs at least 100 eigenvalues (reptrix raises IndexError below that: NaN).
* LiDAR: between-class scatter summed (not divided by n - 1), within-class scatter averaged
  over images, ridge 1e-6 (not 1e-4); then -- the decisive difference -- not the eigenvalues
  of Sw^-1/2 Sb Sw^-1/2 but the PCA explained-variance ratios of that D x D matrix taken as
  D samples (column-centered, squared singular values); p = ratio / sum + 1e-7.

stable-pretraining (``callbacks/rankme.py``, ``callbacks/lidar.py``):

* RankMe: uncentered singular values, as ours and as published, but eps 1e-5 (ours 1e-7).
* LiDAR: as ours (1/(n-1), 1/(n(q-1)), ridge 1e-4) except p = (lam + 1e-8) / sum(lam + 1e-8)
  (ours: lam / sum(lam) + 1e-8).
"""

from __future__ import annotations

import numpy as np

from ssl_eval.metrics.geometry import lidar_matrix
from ssl_eval.metrics.options import CONVENTIONS  # defined with the option that names them

__all__ = ["CONVENTIONS", "reptrix_alpha_req", "reptrix_lidar", "reptrix_rankme",
           "spt_lidar", "spt_rankme"]

REPTRIX_EPS = 1e-7
REPTRIX_MAX_EIGENVALUES = 2048
REPTRIX_LIDAR_DELTA = 1e-6
SPT_RANKME_EPS = 1e-5
SPT_LIDAR_EPS = 1e-8


def _effective_rank(lam: np.ndarray, eps: float) -> float:
    """exp(-sum p log p), p = lam / sum|lam| + eps (reptrix's ``get_rank``)."""
    total = float(np.sum(np.abs(lam)))
    if not total > 0.0:
        return float("nan")
    p = lam / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def _explained_variance_ratio(centered_eigenvalues: np.ndarray, n: int, d: int) -> np.ndarray:
    """What sklearn's PCA(n_components=min(2048, n, d), svd_solver='full') reports."""
    lam = np.clip(np.sort(np.asarray(centered_eigenvalues, dtype=np.float64))[::-1], 0.0, None)
    return lam[:min(REPTRIX_MAX_EIGENVALUES, n, d)] / lam.sum()


def reptrix_rankme(centered_eigenvalues: np.ndarray, n: int) -> float:
    """RankMe as reptrix's ``get_rankme`` computes it, from the covariance (or centered scatter) eigenvalues of X.

    Args:
        centered_eigenvalues: the (D,) eigenvalues of X's covariance or centered scatter.
        n: number of rows of X (PCA keeps at most min(2048, n, D) components).

    Returns:
        reptrix's RankMe, NaN when the eigenvalues sum to 0.
    """
    d = len(centered_eigenvalues)
    return _effective_rank(_explained_variance_ratio(centered_eigenvalues, n, d), REPTRIX_EPS)


def reptrix_alpha_req(centered_eigenvalues: np.ndarray, n: int) -> tuple[float, float]:
    """Alpha-ReQ as reptrix's ``get_alpha`` computes it (alpha, fit_R2), from the covariance eigenvalues of X.

    Args:
        centered_eigenvalues: the (D,) eigenvalues of X's covariance or centered scatter.
        n: number of rows of X.

    Returns:
        (alpha, R^2); both NaN with fewer than 100 positive normalised eigenvalues.
    """
    d = len(centered_eigenvalues)
    eigen = _explained_variance_ratio(centered_eigenvalues, n, d)
    if eigen.size < 100 or not np.all(eigen[:100] > 0.0):
        return float("nan"), float("nan")
    logs = np.log(np.abs(eigen))
    fit_index = np.arange(10, 100)
    ranks = fit_index + 1
    y = logs[fit_index][:, None]
    x = np.stack([-np.log(ranks), np.ones(ranks.size)], axis=1)
    w = 1.0 / ranks.astype(np.float32)[:, None]
    b = np.linalg.solve(x.T @ (x * w), (w * x).T @ y).ravel()
    all_ranks = np.arange(1, eigen.size + 1)
    log_pred = -np.log(all_ranks) * b[0] + b[1]
    stop = 500 if eigen.size >= 512 else eigen.size - 10
    y_true, y_pred = logs[ranks[0]:stop], log_pred[ranks[0]:stop]
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    return float(b[0]), (1.0 - ss_res / ss_tot) if ss_tot > 0.0 else float("nan")


def reptrix_lidar(views: tuple[np.ndarray, ...]) -> float:
    """LiDAR as reptrix's ``get_lidar`` computes it, for q = 2 views of n images (row i of each view = image i).

    reptrix sums the between-class scatter (ours divides by n - 1: a scale factor the
    ratios below ignore) and averages the within-class one over images (ours divides by
    n(q - 1): the same for q = 2, so q must be 2 here); its ridge is 1e-6.

    Args:
        views: (V1, V2), two (n, D) arrays.

    Returns:
        reptrix's LiDAR.

    Raises:
        ValueError: not exactly 2 views, or fewer than 2 images.
    """
    if len(views) != 2:
        raise ValueError(f"reptrix_lidar reproduces q = 2 views, got {len(views)}; "
                         "pass views=(V1, V2).")
    m = lidar_matrix(views, delta=REPTRIX_LIDAR_DELTA)
    d = m.shape[0]
    s = np.linalg.svd(m - m.mean(axis=0), compute_uv=False)
    return _effective_rank(_explained_variance_ratio(s ** 2, d, d), REPTRIX_EPS)


def spt_rankme(uncentered_singular_values: np.ndarray) -> float:
    """stable-pretraining's RankMe: uncentered singular values, eps 1e-5.

    Args:
        uncentered_singular_values: singular values of the uncentered X.

    Returns:
        Its RankMe, NaN when they sum to 0.
    """
    return _effective_rank(np.asarray(uncentered_singular_values, dtype=np.float64),
                           SPT_RANKME_EPS)


def spt_lidar(lidar_eigenvalues: np.ndarray) -> float:
    """stable-pretraining's LiDAR from the eigenvalues of ``geometry.lidar_matrix(delta=1e-4)``.

    Args:
        lidar_eigenvalues: eigenvalues of that matrix (negatives clipped to 0).

    Returns:
        Its LiDAR: exp of the entropy of p = (lam + 1e-8) / sum(lam + 1e-8).
    """
    lam = np.clip(np.asarray(lidar_eigenvalues, dtype=np.float64), 0.0, None) + SPT_LIDAR_EPS
    p = lam / lam.sum()
    return float(np.exp(-np.sum(p * np.log(p))))

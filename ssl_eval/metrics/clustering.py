"""Clustering metrics of the paper: k-means C1/C2, silhouette S(C1), AMI(C1, C2), AMI(C1, y).

Choices (stated here and in the registry):

* k-means is scikit-learn ``KMeans(n_clusters=k, n_init=1)`` seeded ``random_state`` (C1)
  and ``random_state + 1`` (C2); one init each, so that the agreement measures how stable
  the cluster structure is across seeds.
* silhouette is Euclidean, exact by default, computed blockwise (never an N x N matrix).
* k = None -> the number of distinct labels if labels are given, else 10.
* N < k -> every clustering metric is NaN with flag ``"n_lt_k"`` (a partition into more
  clusters than points is meaningless, and k = N would make every point its own cluster).
* all rows equal -> NaN with flags ``"collapsed"`` and ``"single_cluster"``.
* k-means finds a single cluster -> silhouette and agreement are NaN (flag
  ``"single_cluster"``); AMI with the labels keeps scikit-learn's value.
* fewer distinct clusters found than k -> flag ``"clusters_lt_k"`` (values still computed).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_mutual_info_score
from sklearn.utils import check_random_state

__all__ = ["clustering_metrics", "kmeans_labels", "silhouette_score"]

# Elements of one (block rows x N) distance block: 2**22 float64 = 32 MiB.
_BLOCK_ELEMENTS = 1 << 22


def silhouette_score(X: np.ndarray, labels: np.ndarray, *, sample_size: int | None = None,
                     random_state=None) -> float:
    """Mean silhouette coefficient with Euclidean distance, computed in row blocks.

    Agrees with ``sklearn.metrics.silhouette_score(X, labels, sample_size=...,
    random_state=...)`` (same sample for the same ``random_state``) but holds at most a
    (block x N) distance block. A point alone in its cluster scores 0, as in scikit-learn.
    """
    X = np.asarray(X)
    labels = np.asarray(labels)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}; "
                         "reshape it, e.g. X.reshape(len(X), -1).")
    if labels.ndim != 1 or labels.shape[0] != X.shape[0]:
        raise ValueError(f"labels must be 1-D with one entry per row of X ({X.shape[0]}), "
                         f"got shape {labels.shape}; pass one cluster id per sample.")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or inf; silhouette is undefined. Drop or fix "
                         "non-finite rows first.")
    if sample_size is not None:
        if not isinstance(sample_size, (int, np.integer)) or not 2 <= sample_size:
            raise ValueError(f"sample_size must be an int >= 2 or None, got {sample_size!r}.")
        if sample_size < X.shape[0]:
            idx = check_random_state(random_state).permutation(X.shape[0])[:sample_size]
            X, labels = X[idx], labels[idx]
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.ravel()
    n, n_labels = X.shape[0], int(codes.max()) + 1 if codes.size else 0
    if not 2 <= n_labels <= n - 1:
        raise ValueError(f"silhouette needs 2 <= number of clusters <= n_samples - 1, got "
                         f"{n_labels} clusters for {n} samples; use more samples or a "
                         "different k.")
    X = X.astype(np.float64, copy=False)
    sq_norms = np.einsum("ij,ij->i", X, X)
    counts = np.bincount(codes, minlength=n_labels).astype(np.float64)
    onehot = np.zeros((n, n_labels))
    onehot[np.arange(n), codes] = 1.0
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    scores = np.empty(n)
    for start in range(0, n, block):
        stop = min(start + block, n)
        sq = sq_norms[start:stop, None] + sq_norms[None, :] - 2.0 * (X[start:stop] @ X.T)
        np.maximum(sq, 0.0, out=sq)
        rows = np.arange(stop - start)
        sq[rows, rows + start] = 0.0  # self-distance is exactly 0
        sums = np.sqrt(sq, out=sq) @ onehot  # (block, n_labels) distance sums per cluster
        own = codes[start:stop]
        own_count = counts[own]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = sums[rows, own] / (own_count - 1.0)
            means = sums / counts[None, :]
        means[rows, own] = np.inf
        b = means.min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (b - a) / np.maximum(a, b)
        s = np.nan_to_num(s)  # a = b = 0 (duplicates) gives 0, as in scikit-learn
        s[own_count <= 1] = 0.0
        scores[start:stop] = s
    return float(scores.mean())


def kmeans_labels(X: np.ndarray, k: int, *, random_state: int) -> np.ndarray:
    """k-means (scikit-learn, k-means++ init, n_init=1) cluster ids for the rows of X."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=k, n_init=1, random_state=random_state)
        return model.fit_predict(X)


def clustering_metrics(X: np.ndarray, *, labels: np.ndarray | None = None,
                       k: int | None = None, reduce: str = "none", pca_dims: int = 32,
                       silhouette_sample_size: int | None = None,
                       max_points: int | None = None,
                       random_state: int = 0) -> tuple[dict[str, float], list[str]]:
    """silhouette, ami_agreement and (with labels) ami_ground_truth from one k-means C1.

    X must be finite (the registry checks). Returns (values, flags).
    """
    nan = float("nan")
    flags: list[str] = []
    values = {"silhouette": nan, "ami_agreement": nan}
    if labels is not None:
        values["ami_ground_truth"] = nan
        labels = np.asarray(labels)
    if k is None:
        k = int(np.unique(labels).size) if labels is not None else 10
    if max_points is not None and X.shape[0] > max_points:
        idx = np.sort(check_random_state(random_state).choice(X.shape[0], max_points,
                                                              replace=False))
        X = X[idx]
        labels = labels[idx] if labels is not None else None
    n = X.shape[0]
    if n < k:
        return values, ["n_lt_k"]
    if n == 1 or float(np.ptp(X, axis=0).max()) == 0.0:
        return values, ["collapsed", "single_cluster"]
    if reduce == "pca":
        dims = min(pca_dims, n, X.shape[1])
        X = PCA(n_components=dims, random_state=random_state).fit_transform(X)
    c1 = kmeans_labels(X, k, random_state=random_state)
    c2 = kmeans_labels(X, k, random_state=random_state + 1)
    found = int(np.unique(c1).size)
    if found < k:
        flags.append("clusters_lt_k")
    if labels is not None:
        values["ami_ground_truth"] = float(adjusted_mutual_info_score(labels, c1))
    if found < 2:
        flags.append("single_cluster")
        return values, flags
    values["ami_agreement"] = float(adjusted_mutual_info_score(c1, c2))
    if found <= n - 1:
        try:
            values["silhouette"] = silhouette_score(
                X, c1, sample_size=silhouette_sample_size, random_state=random_state)
        except ValueError:  # the sample held one cluster only, or one point per cluster
            flags.append("silhouette_sample_degenerate")
    else:
        flags.append("clusters_eq_n")
    return values, flags

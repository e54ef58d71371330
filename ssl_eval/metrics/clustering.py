"""Clustering metrics of the paper: k-means C1/C2, silhouette S(C1), AMI(C1, C2), AMI(C1, y).

Choices (stated here and in the registry):

* k-means is scikit-learn ``KMeans(n_clusters=k, n_init=1)`` seeded ``random_state`` (C1)
  and ``random_state + 1`` (C2); one init each, so that the agreement measures how stable
  the cluster structure is across seeds.
* silhouette is Euclidean, exact by default (within 1e-4 of scikit-learn), computed over
  symmetric float32 distance blocks reduced per cluster by GEMM (never an N x N matrix).
* k = None -> the number of distinct labels if labels are given, else 10.
* N < k -> every clustering metric is NaN with flag ``"n_lt_k"`` (a partition into more
  clusters than points is meaningless, and k = N would make every point its own cluster).
* all rows equal -> NaN with flags ``"collapsed"`` and ``"single_cluster"``.
* k-means finds a single cluster -> silhouette and agreement are NaN (flag
  ``"single_cluster"``); AMI with the labels keeps scikit-learn's value.
* fewer distinct clusters found than k -> flag ``"clusters_lt_k"`` (values still computed).
* ``cluster_learnability`` (CLID) reuses C1 and the space it was found in (see
  ``learnability``); NaN with ``"single_cluster"`` (one cluster is trivially learnable) and
  with ``"n_lt_cl_folds"`` when there are fewer rows than cross-validation folds.
* ``reduce="pca"`` clusters the top ``pca_dims`` principal components; ``reduce="umap"``
  clusters a seeded UMAP to ``umap_dims`` dimensions (see ``reduction``), and falls back to
  PCA with flag ``"umap_unavailable"`` where umap-learn is not installed. The silhouette is
  then measured in the reduced space too.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_mutual_info_score
from sklearn.utils import check_random_state

from ssl_eval.common.threads import quiet_known_warnings
from ssl_eval.common.validation import check_labels, check_matrix
from ssl_eval.metrics.learnability import CL_FOLDS, cluster_learnability
from ssl_eval.metrics.reduction import reduce as reduce_rows

__all__ = ["clustering_metrics", "kmeans_labels", "silhouette_score"]

# Rows of one distance block: a (2048 x 2048) float32 block is 16 MiB.
_BLOCK_ROWS = 2048


def _distance_factors(X: np.ndarray) -> np.ndarray:
    """float32 rows [x, |x|^2, 1] of x = (X - mean) / max|X - mean|.

    Silhouette is invariant to translation and scale, so centering (less cancellation in
    |a|^2 + |b|^2 - 2ab) and scaling to [-1, 1] (no float32 overflow or underflow) change
    nothing but the rounding. Norms are summed in float64 from the rounded rows.

    Returns:
        The (N, D + 2) float32 factor rows.
    """
    n, d = X.shape
    mean = X.mean(axis=0, dtype=np.float64)
    spread = max(float(np.max(X.max(axis=0) - mean)), float(np.max(mean - X.min(axis=0))))
    scale = 1.0 / spread if spread > 0.0 and np.isfinite(1.0 / spread) else 1.0
    factors = np.empty((n, d + 2), dtype=np.float32)
    for start in range(0, n, _BLOCK_ROWS):
        rows = slice(start, start + _BLOCK_ROWS)
        block = (np.asarray(X[rows], dtype=np.float64) - mean) * scale
        factors[rows, :d] = block
        factors[rows, d] = np.einsum("ij,ij->i", factors[rows, :d], factors[rows, :d],
                                     dtype=np.float64)
        factors[rows, d + 1] = 1.0
    return factors


def _cluster_distance_sums(X: np.ndarray, codes: np.ndarray, n_labels: int) -> np.ndarray:
    """(N, n_labels) float64: sum of Euclidean distances from each row to each cluster.

    Symmetric blocked work: for each pair of row blocks I <= J, one float32 GEMM gives the
    squared distances (the norms ride in two extra columns: [x, |x|^2, 1] . [-2y, 1, |y|^2]),
    and two (b x b) @ (b x k) GEMMs with a one-hot matrix add the distances into per-cluster
    sums for both blocks, accumulated in float64. Memory: the (N, D + 2) float32 factors and
    one (b x b) block; never an N x N matrix.

    Returns:
        The (N, n_labels) float64 sums.
    """
    n = X.shape[0]
    d = X.shape[1]
    left = _distance_factors(X)
    onehot = np.zeros((n, n_labels), dtype=np.float32)
    onehot[np.arange(n), codes] = 1.0
    sums = np.zeros((n, n_labels))
    for i in range(0, n, _BLOCK_ROWS):
        rows_i = slice(i, min(i + _BLOCK_ROWS, n))
        for j in range(i, n, _BLOCK_ROWS):
            rows_j = slice(j, min(j + _BLOCK_ROWS, n))
            right = np.empty((rows_j.stop - j, d + 2), dtype=np.float32)
            np.multiply(left[rows_j, :d], -2.0, out=right[:, :d])
            right[:, d] = 1.0
            right[:, d + 1] = left[rows_j, d]
            dist = left[rows_i] @ right.T
            np.maximum(dist, 0.0, out=dist)
            np.sqrt(dist, out=dist)
            if i == j:
                np.fill_diagonal(dist, 0.0)  # self-distance is exactly 0
                sums[rows_i] += dist @ onehot[rows_j]
            else:
                sums[rows_i] += dist @ onehot[rows_j]
                sums[rows_j] += dist.T @ onehot[rows_i]
    return sums


def silhouette_score(X: np.ndarray, labels: np.ndarray, *, sample_size: int | None = None,
                     random_state: int | np.random.RandomState | None = None) -> float:
    """Mean silhouette coefficient with Euclidean distance, computed in row blocks.

    Agrees with ``sklearn.metrics.silhouette_score(X, labels, sample_size=...,
    random_state=...)`` within 1e-4 (same sample for the same ``random_state``) but holds
    at most one (2048 x 2048) float32 distance block besides an (N, D + 2) float32 copy of
    X. Distances are float32 GEMMs on the centered, rescaled rows; sums are float64. A
    point alone in its cluster scores 0, as in scikit-learn.

    Args:
        X: (N, D) real array, finite.
        labels: (N,) cluster ids.
        sample_size: score a random sample of this many rows (>= 2); None scores all.
        random_state: seed (or RandomState) of that sample.

    Returns:
        The mean silhouette, in [-1, 1].

    Raises:
        TypeError: X is not a real numeric array.
        ValueError: X is not 2-D or not finite, labels do not match its rows, ``sample_size``
            is invalid, or the (sampled) rows hold fewer than 2 or more than N - 1 clusters.
    """
    X = check_matrix(X, name="X", non_finite_fix="the silhouette is undefined for them; drop or fix the non-finite rows first")
    labels = check_labels(labels, n_rows=X.shape[0])
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
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    sums = _cluster_distance_sums(X, codes, n_labels)
    counts = np.bincount(codes, minlength=n_labels).astype(np.float64)
    rows = np.arange(n)
    own_count = counts[codes]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, codes] / (own_count - 1.0)
        means = sums / counts[None, :]
    means[rows, codes] = np.inf
    b = means.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (b - a) / np.maximum(a, b)
    s = np.nan_to_num(s)  # a = b = 0 (duplicates) gives 0, as in scikit-learn
    s[own_count <= 1] = 0.0
    return float(s.mean())


def kmeans_labels(X: np.ndarray, k: int, *, random_state: int) -> np.ndarray:
    """k-means (scikit-learn, k-means++ init, n_init=1) cluster ids for the rows of X.

    Args:
        X: (N, D) float array, N >= k.
        k: number of clusters.
        random_state: seed of the initialisation.

    Returns:
        (N,) int cluster ids.
    """
    quiet_known_warnings()  # "Number of distinct clusters": duplicate points
    model = KMeans(n_clusters=k, n_init=1, random_state=random_state)
    codes: np.ndarray = model.fit_predict(X)
    return codes


def clustering_metrics(X: np.ndarray, *, labels: np.ndarray | None = None,
                       k: int | None = None, reduce: str = "none", pca_dims: int = 32,
                       umap_dims: int = 3,
                       silhouette_sample_size: int | None = None,
                       max_points: int | None = None,
                       random_state: int = 0) -> tuple[dict[str, float], list[str]]:
    """silhouette, ami_agreement, cluster_learnability and (with labels) ami_ground_truth from one k-means C1.

    X must be finite (the registry checks).

    Args:
        X: (N, D) float array of embeddings.
        labels: (N,) class labels, or None.
        k: number of clusters; None: the number of distinct labels, else 10.
        reduce: ``"none"``, ``"pca"`` or ``"umap"``: the space to cluster in.
        pca_dims: components kept by ``reduce="pca"``.
        umap_dims: dimensions of ``reduce="umap"``.
        silhouette_sample_size: score the silhouette on this many random rows; None: all.
        max_points: cluster at most this many random rows; None: all.
        random_state: seed of C1 (C2 uses ``random_state + 1``), of the subsamples and reductions.

    Returns:
        (metric name -> value, flags): NaN where undefined, explained by the flags (see the module doc).
    """
    nan = float("nan")
    values = {"silhouette": nan, "ami_agreement": nan, "cluster_learnability": nan}
    if labels is not None:
        values["ami_ground_truth"] = nan
        labels = np.asarray(labels)
    if k is None:
        k = int(np.unique(labels).size) if labels is not None else 10
    X, labels = _subsample(X, labels, max_points, random_state)
    n = X.shape[0]
    if n < k:
        return values, ["n_lt_k"]
    if n == 1 or float(np.ptp(X, axis=0).max()) == 0.0:
        return values, ["collapsed", "single_cluster"]
    X, flags = _clustering_space(X, reduce, pca_dims, umap_dims, random_state)
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
    flags += _scores_of_c1(X, c1, values, silhouette_sample_size, random_state)
    return values, flags


def _subsample(X: np.ndarray, labels: np.ndarray | None, max_points: int | None,
               random_state: int) -> tuple[np.ndarray, np.ndarray | None]:
    """At most ``max_points`` random rows of X (and their labels), in their order; all rows for None."""
    if max_points is None or X.shape[0] <= max_points:
        return X, labels
    idx = np.sort(check_random_state(random_state).choice(X.shape[0], max_points, replace=False))
    return X[idx], (labels[idx] if labels is not None else None)


def _clustering_space(X: np.ndarray, reduce: str, pca_dims: int, umap_dims: int,
                      random_state: int) -> tuple[np.ndarray, list[str]]:
    """The rows in the space k-means runs in (as given, PCA or UMAP), with a flag when UMAP is missing."""
    if reduce == "pca":
        dims = min(pca_dims, X.shape[0], X.shape[1])
        return PCA(n_components=dims, random_state=random_state).fit_transform(X), []
    if reduce == "umap":
        reduced, used = reduce_rows(X, "umap", umap_dims, random_state=random_state)
        return reduced, ([] if used == "umap" else ["umap_unavailable"])
    return X, []


def _scores_of_c1(X: np.ndarray, c1: np.ndarray, values: dict[str, float],
                  silhouette_sample_size: int | None, random_state: int) -> list[str]:
    """Fill ``values``' cluster learnability and silhouette of a C1 with two or more clusters.

    Returns:
        The flags of the scores left undefined.
    """
    flags = []
    n, found = X.shape[0], int(np.unique(c1).size)
    if n >= CL_FOLDS:
        values["cluster_learnability"] = cluster_learnability(X, c1, random_state=random_state)
    else:
        flags.append("n_lt_cl_folds")
    if found <= n - 1:
        try:
            values["silhouette"] = silhouette_score(
                X, c1, sample_size=silhouette_sample_size, random_state=random_state)
        except ValueError:  # the sample held one cluster only, or one point per cluster
            flags.append("silhouette_sample_degenerate")
    else:
        flags.append("clusters_eq_n")
    return flags

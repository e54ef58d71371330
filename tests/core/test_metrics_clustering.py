"""Clustering metrics against scikit-learn, plus edge cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_mutual_info_score
from sklearn.metrics import silhouette_score as sk_silhouette

from ssl_eval.metrics import MetricOptions, clustering, compute_group
from ssl_eval.metrics.clustering import clustering_metrics, silhouette_score
from tests.helpers import blobs


def _blobs(n=120, d=5, k=3, seed=0):
    return blobs(n, d, k, spread=5.0, seed=seed)


def test_silhouette_matches_sklearn_exact():
    X, y = _blobs()
    assert silhouette_score(X, y) == pytest.approx(sk_silhouette(X, y), abs=1e-4)


def test_silhouette_matches_sklearn_with_singletons_and_duplicates():
    X, y = _blobs(n=40)
    y = y.copy()
    y[0] = 7  # a singleton cluster scores 0
    X[5] = X[6]
    assert silhouette_score(X, y) == pytest.approx(sk_silhouette(X, y), abs=1e-4)


def test_silhouette_sample_matches_sklearn_same_sample():
    X, y = _blobs(n=200)
    ours = silhouette_score(X, y, sample_size=60, random_state=3)
    ref = sk_silhouette(X, y, sample_size=60, random_state=3)
    assert ours == pytest.approx(ref, abs=1e-4)


def test_silhouette_blocks_agree(monkeypatch):
    X, y = _blobs(n=50)
    full = silhouette_score(X, y)
    monkeypatch.setattr(clustering, "_BLOCK_ROWS", 7)  # 8 blocks, the last one short
    assert silhouette_score(X, y) == pytest.approx(full, abs=1e-7)  # float32 block sums
    assert silhouette_score(X, y) == pytest.approx(sk_silhouette(X, y), abs=1e-4)


@pytest.mark.parametrize("offset, spread", [(0.0, 1e-20), (0.0, 1e20), (1e4, 1.0),
                                            (1e3, 1e-3)])
def test_silhouette_float32_kernel_is_exact_at_extreme_scales(offset, spread):
    # Tight clusters far from the origin cancel badly in |a|^2 + |b|^2 - 2ab; we center and
    # rescale before the float32 GEMM. The reference is the plain definition on exact
    # pairwise differences (scipy pdist); scikit-learn's own |a|^2 + |b|^2 - 2ab loses
    # ~3e-4 at offset 1e3, spread 1e-3.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    centers = rng.normal(size=(4, 16)) * 5.0
    X = offset + spread * (centers[y] + 0.01 * rng.normal(size=(300, 16)))
    ref = sk_silhouette(squareform(pdist(X)), y, metric="precomputed")
    assert silhouette_score(X, y) == pytest.approx(ref, abs=1e-4)


def test_silhouette_float32_and_integer_input():
    X, y = _blobs(n=90)
    ref = sk_silhouette(X, y)
    assert silhouette_score(X.astype(np.float32), y) == pytest.approx(ref, abs=1e-4)
    Xi = np.round(X * 10).astype(np.int64)
    assert silhouette_score(Xi, y) == pytest.approx(sk_silhouette(Xi, y), abs=1e-4)
    with pytest.raises(TypeError, match="real numeric array"):
        silhouette_score(X.astype(str), y)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 25), d=st.integers(1, 4), k=st.integers(2, 4),
       seed=st.integers(0, 10_000))
def test_silhouette_property_bounded_and_equal_to_sklearn(n, d, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, k, n)
    if not 2 <= np.unique(y).size <= n - 1:
        return
    ours = silhouette_score(X, y)
    assert -1.0 <= ours <= 1.0
    assert ours == pytest.approx(sk_silhouette(X, y), abs=1e-4)


@pytest.mark.parametrize("bad_labels, match", [
    (np.zeros(10), "2 <= number of clusters"),
    (np.arange(10), "2 <= number of clusters"),
    (np.zeros(3), "one label per row of X"),
])
def test_silhouette_invalid_labels(bad_labels, match):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=match):
        silhouette_score(X, bad_labels)


def test_silhouette_rejects_non_finite_and_1d():
    with pytest.raises(ValueError, match="NaN or inf"):
        silhouette_score(np.array([[0.0], [np.nan], [1.0]]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="must be 2-D"):
        silhouette_score(np.zeros(5), np.zeros(5))


def test_group_matches_sklearn_pipeline():
    X, y = _blobs(n=150, k=4, seed=1)
    res = compute_group("clustering", X, labels=y, random_state=5)
    c1 = KMeans(n_clusters=4, n_init=1, random_state=5).fit_predict(X)
    c2 = KMeans(n_clusters=4, n_init=1, random_state=6).fit_predict(X)
    assert res.values["silhouette"] == pytest.approx(sk_silhouette(X, c1), abs=1e-4)
    assert res.values["ami_agreement"] == pytest.approx(adjusted_mutual_info_score(c1, c2))
    assert res.values["ami_ground_truth"] == pytest.approx(adjusted_mutual_info_score(y, c1))
    assert res.flags == ()


def test_k_defaults_to_ten_without_labels_and_labels_metric_skipped():
    X, _ = _blobs(n=60)
    res = compute_group("clustering", X)
    assert set(res.values) == {"silhouette", "ami_agreement", "cluster_learnability"}


def test_pca_reduce_and_max_points_follow_the_sklearn_pipeline():
    X, y = _blobs(n=100, d=40)
    res = compute_group("clustering", X, labels=y, random_state=3,
                        options=MetricOptions(reduce="pca", pca_dims=4, max_points=50))
    # the same steps by hand: 50 rows drawn with the random_state, PCA to 4 dims, two k-means
    idx = np.sort(np.random.RandomState(3).choice(100, 50, replace=False))
    Z = PCA(n_components=4, random_state=3).fit_transform(X[idx])
    k = np.unique(y).size  # k defaults to the labels' class count
    c1 = KMeans(n_clusters=k, n_init=1, random_state=3).fit_predict(Z)
    c2 = KMeans(n_clusters=k, n_init=1, random_state=4).fit_predict(Z)
    assert res.values["silhouette"] == pytest.approx(sk_silhouette(Z, c1), abs=1e-5)
    assert res.values["ami_agreement"] == pytest.approx(adjusted_mutual_info_score(c1, c2))
    assert res.values["ami_ground_truth"] == pytest.approx(adjusted_mutual_info_score(y[idx], c1))
    # and neither option is ignored: without them the values differ
    full = compute_group("clustering", X, labels=y, random_state=3)
    assert full.values["silhouette"] != pytest.approx(res.values["silhouette"], abs=1e-3)


def test_collapsed_embedding_gives_nan_and_flag():
    X = np.ones((30, 4))
    res = compute_group("clustering", X, labels=np.arange(30) % 3)
    assert all(np.isnan(v) for v in res.values.values())
    assert "collapsed" in res.flags and "single_cluster" in res.flags


def test_n_lt_k_gives_nan_and_flag():
    X, _ = _blobs(n=5)
    res = compute_group("clustering", X, options=MetricOptions(k=8))
    assert res.flags == ("n_lt_k",)
    assert all(np.isnan(v) for v in res.values.values())


def test_single_cluster_k1():
    X, y = _blobs(n=30)
    res = compute_group("clustering", X, labels=y, options=MetricOptions(k=1))
    assert "single_cluster" in res.flags
    assert np.isnan(res.values["silhouette"]) and np.isnan(res.values["ami_agreement"])
    assert res.values["ami_ground_truth"] == pytest.approx(0.0, abs=1e-12)


def test_non_finite_flag():
    X, y = _blobs(n=30)
    X[3, 1] = np.inf
    res = compute_group("clustering", X, labels=y)
    assert res.flags == ("non_finite",)
    assert all(np.isnan(v) for v in res.values.values())


def test_one_dimensional_embedding():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 0.1, 20), rng.normal(5, 0.1, 20)])[:, None]
    res = compute_group("clustering", X, options=MetricOptions(k=2))
    assert res.values["silhouette"] > 0.9
    assert res.values["ami_agreement"] == pytest.approx(1.0)


def test_clustering_metrics_direct_returns_flags_list():
    X, _ = _blobs(n=40)
    values, flags = clustering_metrics(X, k=3)
    assert set(values) == {"silhouette", "ami_agreement", "cluster_learnability"} and flags == []


@settings(max_examples=20, deadline=None)
@given(n=st.integers(5, 30), d=st.integers(1, 5), k=st.integers(2, 4),
       seed=st.integers(0, 10_000))
def test_property_silhouette_invariances(n, d, k, seed):
    # Silhouette depends on the partition and on Euclidean distances only: renaming the
    # clusters (any permutation, any label values), rotating, translating or scaling X
    # leaves it unchanged.
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, k, n)
    if not 2 <= np.unique(y).size <= n - 1:
        return
    base = silhouette_score(X, y)
    renamed = np.array([f"c{i}" for i in rng.permutation(k)])[y]
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    assert silhouette_score(X, renamed) == pytest.approx(base, abs=1e-6)
    assert silhouette_score(X, rng.permutation(k)[y] * 7 - 3) == pytest.approx(base, abs=1e-6)
    assert silhouette_score(X @ Q, y) == pytest.approx(base, abs=1e-5)
    assert silhouette_score(50.0 + 1e3 * X, y) == pytest.approx(base, abs=1e-5)


@pytest.mark.parametrize("name", ["ami_agreement", "ami_ground_truth", "silhouette"])
def test_clustering_metrics_invariant_to_ground_truth_relabelling(name):
    # AMI(C1, y) is invariant to renaming y; silhouette and agreement do not read y at all
    # beyond k = its number of distinct values.
    X, y = _blobs(n=90, k=3, seed=4)
    a = compute_group("clustering", X, labels=y, random_state=2).values[name]
    b = compute_group("clustering", X, labels=np.array(["x", "y", "z"])[[2, 0, 1]][y],
                      random_state=2).values[name]
    assert a == pytest.approx(b, abs=1e-12)

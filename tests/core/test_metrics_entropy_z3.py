"""Entropy_z3 (the paper's H(Z_3) as inferred) against a hand computation, and its reductions.

The reductions it and reduce="umap" use: PCA always, UMAP where umap-learn is installed.
"""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.special import digamma, gamma

from ssl_eval.metrics import MetricOptions, compute_group, reduction
from ssl_eval.metrics.entropy import entropy_z3
from tests.helpers import blobs


def _blobs(n=60, d=5, seed=0):
    return blobs(n, d, 3, spread=4.0, balanced=True, noise=np.linspace(1.0, 0.2, d), seed=seed)[0]


def _kl_bits_by_hand(Z, k):
    """Kozachenko-Leonenko written out: every pairwise distance, the k-th other neighbour."""
    n, d = Z.shape
    eps = np.sort(cdist(Z, Z), axis=1)[:, k]  # column 0 is the point itself
    v_d = np.pi ** (d / 2) / gamma(d / 2 + 1)
    nats = digamma(n) - digamma(k) + np.log(v_d) + d * np.mean(np.log(eps))
    return nats / np.log(2.0)


def _pca3_by_hand(X):
    """Top-3 principal component scores from the covariance's eigenvectors (not an SVD)."""
    centered = X - X.mean(axis=0)
    w, v = np.linalg.eigh(np.cov(centered, rowvar=False))
    return centered @ v[:, np.argsort(w)[::-1][:3]]


def test_entropy_z3_pca_matches_hand_computation():
    X = _blobs()
    bits, used, duplicates = entropy_z3(X, reduction="pca", k=3)
    assert used == "pca" and not duplicates
    # component signs differ between routes; distances, and so the entropy, do not
    assert bits == pytest.approx(_kl_bits_by_hand(_pca3_by_hand(X), 3), rel=1e-10)


def test_entropy_z3_in_registry_records_the_reduction():
    X = _blobs()
    res = compute_group("entropy", X, options=MetricOptions(entropy_knn_k=4))
    assert res.values["entropy_z3"] == pytest.approx(_kl_bits_by_hand(_pca3_by_hand(X), 4),
                                                     rel=1e-10)
    assert res.details == {"entropy_z3_reduction": "pca"}
    assert "umap_unavailable" not in res.flags


def test_entropy_z3_pca_scale_shift_is_three_log2():
    """PCA keeps the embedding's units: scaling by c adds 3 log2(c) bits."""
    X = _blobs()
    a = entropy_z3(X)[0]
    b = entropy_z3(8.0 * X)[0]
    assert b - a == pytest.approx(3 * np.log2(8.0), rel=1e-9)


def test_fewer_than_three_dimensions_use_what_there_is():
    X = _blobs(d=2)
    bits, used, _ = entropy_z3(X)
    assert used == "pca" and bits == pytest.approx(_kl_bits_by_hand(X - X.mean(0), 3), rel=1e-10)


def test_umap_requested_without_umap_falls_back_to_pca_and_says_so(monkeypatch):
    monkeypatch.setattr(reduction, "umap_available", lambda: False)
    X = _blobs()
    res = compute_group("entropy", X, options=MetricOptions(z3_reduction="umap"))
    assert res.details == {"entropy_z3_reduction": "pca"}
    assert "umap_unavailable" in res.flags
    assert res.values["entropy_z3"] == pytest.approx(entropy_z3(X)[0], rel=1e-12)
    clus = compute_group("clustering", X, options=MetricOptions(k=3, reduce="umap"))
    assert "umap_unavailable" in clus.flags
    with pytest.raises(ImportError, match="pip install 'ssl-eval\\[umap\\]'"):
        reduction.umap_reduce(X, 3, random_state=0)


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction must be one of \\('pca', 'umap'\\), got 'tsne'"):
        reduction.reduce(_blobs(), "tsne", 3, random_state=0)


@pytest.mark.slow
def test_umap_path_matches_a_direct_seeded_umap_fit():
    """One test pays for umap-learn's import and numba compilation (a minute or more)."""
    umap = pytest.importorskip("umap")
    X = _blobs(n=90)
    opts = MetricOptions(k=3, z3_reduction="umap", reduce="umap", entropy_knn_k=3)
    res = compute_group("entropy", X, options=opts, random_state=5)
    assert res.details == {"entropy_z3_reduction": "umap"} and "umap_unavailable" not in res.flags
    Z = umap.UMAP(n_components=3, random_state=5, n_neighbors=15, min_dist=0.1).fit_transform(
        X.astype(np.float32))
    assert res.values["entropy_z3"] == pytest.approx(_kl_bits_by_hand(Z.astype(np.float64), 3),
                                                     rel=1e-6)
    # the same seed gives the same value; clustering reads the same (cached) 3-d fit
    again = compute_group("entropy", X, options=opts, random_state=5)
    assert again.values["entropy_z3"] == res.values["entropy_z3"]
    clus = compute_group("clustering", X, options=opts, random_state=5)
    assert "umap_unavailable" not in clus.flags
    assert clus.values["ami_agreement"] > 0.9  # three well-separated blobs stay three

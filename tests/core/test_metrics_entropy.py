"""Entropy estimators against the Gaussian closed form and a plainly written KL formula."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.special import digamma, gamma
from scipy.stats import differential_entropy

from ssl_eval.metrics import compute_group
from ssl_eval.metrics.entropy import entropy_metrics, gaussian_entropy, knn_entropy


def _gaussian(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    A = np.array([[2.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, -0.3, 0.5]])
    cov = A @ A.T
    return rng.multivariate_normal(np.zeros(3), cov, size=n), cov


def _closed_form(cov):
    d = cov.shape[0]
    return 0.5 * np.log(np.linalg.det(2 * np.pi * math.e * cov)) if d else 0.0


def test_gaussian_entropy_close_to_closed_form():
    X, cov = _gaussian()
    assert gaussian_entropy(X) == pytest.approx(_closed_form(cov), abs=0.1)
    # and exactly the closed form of the sample covariance (the ridge is negligible)
    assert gaussian_entropy(X) == pytest.approx(_closed_form(np.cov(X, rowvar=False)),
                                                abs=1e-4)


def test_knn_entropy_matches_plain_formula():
    X, _ = _gaussian(n=300, seed=1)
    k = 3
    n, d = X.shape
    dist = np.sort(cdist(X, X), axis=1)[:, k]  # column 0 is the point itself
    v_d = np.pi ** (d / 2) / gamma(d / 2 + 1)
    expected = digamma(n) - digamma(k) + np.log(v_d) + d * np.mean(np.log(dist))
    value, duplicates = knn_entropy(X, k=k)
    assert value == pytest.approx(expected, rel=1e-10) and not duplicates


def test_knn_entropy_consistent_with_truth():
    X, cov = _gaussian(n=2000, seed=2)
    value, _ = knn_entropy(X, k=3)
    assert value == pytest.approx(_closed_form(cov), abs=0.15)


def test_one_dimension_against_scipy():
    x = np.random.default_rng(3).normal(scale=2.0, size=1000)
    ref = differential_entropy(x)
    res = compute_group("entropy", x[:, None])
    assert res.values["entropy_gaussian"] == pytest.approx(ref, abs=0.1)
    assert res.values["entropy_knn"] == pytest.approx(ref, abs=0.15)


def test_scale_covariance():
    X, _ = _gaussian(n=200)
    a = gaussian_entropy(X)
    assert gaussian_entropy(10 * X) == pytest.approx(a + 3 * np.log(10), rel=1e-6)


def test_collapsed_is_finite_and_flagged():
    res = compute_group("entropy", np.ones((20, 3)))
    assert {"collapsed", "duplicate_points", "id_n_lt_3"} <= set(res.flags)
    # the entropies are finite; the intrinsic dimension of one distinct row is undefined
    assert all(np.isfinite(v) for name, v in res.values.items() if not name.startswith("id_"))
    assert np.isnan(res.values["id_twonn"]) and np.isnan(res.values["id_mle"])
    healthy = compute_group("entropy", _gaussian(n=20)[0])
    assert res.values["entropy_gaussian"] < healthy.values["entropy_gaussian"]


def test_too_few_points():
    values, flags = entropy_metrics(np.array([[1.0, 2.0]]), knn_k=3)
    assert np.isnan(values["entropy_gaussian"]) and np.isnan(values["entropy_knn"])
    assert flags == ["n_lt_2", "n_le_knn_k", "id_n_lt_3"]
    with pytest.raises(ValueError, match="more than k=3 rows"):
        knn_entropy(np.zeros((3, 2)), k=3)
    with pytest.raises(ValueError, match="at least 2 rows"):
        gaussian_entropy(np.zeros((1, 2)))


def test_max_points_subsamples_knn_only():
    X, _ = _gaussian(n=400)
    full, _ = entropy_metrics(X)
    capped, _ = entropy_metrics(X, max_points=100, random_state=1)
    assert capped["entropy_gaussian"] == full["entropy_gaussian"]
    assert capped["entropy_knn"] != full["entropy_knn"]

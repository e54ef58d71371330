"""Uniformity, normalised std, alignment and LiDAR against plainly written formulas."""

import numpy as np
import pytest
from scipy.linalg import fractional_matrix_power
from scipy.spatial.distance import pdist

from ssl_eval.metrics import MetricOptions, compute_group, geometry
from ssl_eval.metrics.geometry import geometry_metrics, lidar
from tests.helpers import embeddings


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _data(n=70, d=6, seed=0):
    X, _, views = embeddings(n, d, view_noise=0.3, seed=seed)
    return X, views


def test_uniformity_matches_pdist():
    X, _ = _data()
    expected = np.log(np.mean(np.exp(-2 * pdist(_unit(X), "sqeuclidean"))))
    assert compute_group("geometry", X).values["uniformity"] == pytest.approx(expected,
                                                                              rel=1e-10)


def test_uniformity_blocks_agree(monkeypatch):
    X, _ = _data(n=41)
    full, _ = geometry_metrics(X)
    monkeypatch.setattr(geometry, "_BLOCK_ELEMENTS", 5 * 41)
    blocked, _ = geometry_metrics(X)
    assert blocked["uniformity"] == pytest.approx(full["uniformity"], rel=1e-12)


def test_uniformity_max_points_subsample():
    X, _ = _data(n=200)
    res = compute_group("geometry", X, options=MetricOptions(max_points=50), random_state=1)
    idx = np.sort(np.random.RandomState(1).choice(200, 50, replace=False))
    expected = np.log(np.mean(np.exp(-2 * pdist(_unit(X[idx]), "sqeuclidean"))))
    assert res.values["uniformity"] == pytest.approx(expected, rel=1e-10)


def test_norm_std_and_alignment():
    X, views = _data()
    res = compute_group("geometry", X, views=views)
    assert res.values["norm_std"] == pytest.approx(np.std(_unit(X), axis=0).mean())
    expected = np.mean(np.sum((_unit(views[0]) - _unit(views[1])) ** 2, axis=1))
    assert res.values["alignment"] == pytest.approx(expected)
    # healthy isotropic data is near 1/sqrt(d)
    assert res.values["norm_std"] == pytest.approx(1 / np.sqrt(6), rel=0.2)
    assert "collapsed" not in res.flags


def test_lidar_matches_plain_definition():
    X, (v1, v2) = _data(n=30, d=4)
    n, q, d = 30, 2, 4
    e = np.stack([v1, v2], axis=1)
    mu_i = e.mean(axis=1)
    mu = mu_i.mean(axis=0)
    sb = sum(np.outer(m - mu, m - mu) for m in mu_i) / (n - 1)
    sw = sum(np.outer(e[i, j] - mu_i[i], e[i, j] - mu_i[i])
             for i in range(n) for j in range(q)) / (n * (q - 1)) + 1e-4 * np.eye(d)
    w = np.real(fractional_matrix_power(sw, -0.5))
    lam = np.linalg.eigvalsh(w @ sb @ w)
    p = lam / lam.sum() + 1e-8
    expected = np.exp(-np.sum(p * np.log(p)))
    assert lidar((v1, v2)) == pytest.approx(expected, rel=1e-8)
    assert compute_group("geometry", X, views=(v1, v2)).values["lidar"] == pytest.approx(
        expected, rel=1e-8)


def test_lidar_bounds_and_errors():
    _, views = _data()
    assert 1.0 <= lidar(views) <= 6.0 + 1e-6
    with pytest.raises(ValueError, match="at least 2 images and 2 views"):
        lidar((views[0][:1], views[1][:1]))


def test_collapsed_flag_from_norm_std():
    rng = np.random.default_rng(0)
    X = np.ones((50, 16)) + 1e-4 * rng.normal(size=(50, 16))
    res = compute_group("geometry", X)
    assert res.values["norm_std"] < 0.1 / np.sqrt(16)
    assert "collapsed" in res.flags
    assert res.values["uniformity"] == pytest.approx(0.0, abs=1e-5)


def test_zero_rows_flagged_not_crashing():
    X, views = _data()
    X[0] = 0.0
    res = compute_group("geometry", X, views=views)
    assert "zero_norm" in res.flags
    assert all(np.isfinite(v) for v in res.values.values())


def test_identical_views_give_zero_alignment_and_finite_lidar():
    X, _ = _data()
    res = compute_group("geometry", X, views=(X, X.copy()))
    assert res.values["alignment"] == 0.0
    assert np.isfinite(res.values["lidar"])


def test_single_row():
    res = compute_group("geometry", np.ones((1, 3)), views=(np.ones((1, 3)), np.ones((1, 3))))
    assert "n_lt_2" in res.flags
    assert np.isnan(res.values["uniformity"]) and np.isnan(res.values["lidar"])
    assert res.values["alignment"] == 0.0

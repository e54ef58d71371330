"""Peer conventions (reptrix, stable-pretraining) reproduced from our spectra.

Against written-out formulas always, and against the reptrix package itself where it is installed.
"""

import numpy as np
import pytest

from ssl_eval.metrics import MetricOptions, compute_group, peers
from ssl_eval.metrics.geometry import lidar_matrix
from tests.helpers import embeddings


def _data(n=300, d=128, seed=0):
    X, _, views = embeddings(n, d, scales=np.arange(1, d + 1) ** -0.8, offset=0.3, view_noise=0.1, seed=seed)  # power-law spectrum
    return X, views


def _entropy_rank(p):
    return float(np.exp(-np.sum(p * np.log(p))))


def _metrics(X, views, convention):
    opts = MetricOptions(convention=convention)
    res = {**compute_group("spectral", X, options=opts).values,
           **compute_group("geometry", X, views=views, options=opts).values}
    return res


def test_reptrix_rankme_is_centered_squared_singular_values():
    X, views = _data()
    s = np.linalg.svd(X - X.mean(0), compute_uv=False)
    expected = _entropy_rank(s ** 2 / np.sum(s ** 2) + 1e-7)
    got = _metrics(X, views, "reptrix")
    assert got["rankme_centered"] == pytest.approx(expected, rel=1e-9)
    ours = _metrics(X, views, "ssl-eval")
    assert ours["rankme_centered"] == pytest.approx(_entropy_rank(s / s.sum() + 1e-7), rel=1e-9)
    assert got["rankme"] == ours["rankme"]  # reptrix has no uncentered RankMe: ours stays


def test_stable_pretraining_rankme_eps_and_lidar_eps():
    X, views = _data()
    s = np.linalg.svd(X, compute_uv=False)
    got = _metrics(X, views, "stable-pretraining")
    assert got["rankme"] == pytest.approx(_entropy_rank(s / s.sum() + 1e-5), rel=1e-9)
    lam = np.clip(np.linalg.eigvalsh(lidar_matrix(views, delta=1e-4)), 0, None) + 1e-8
    assert got["lidar"] == pytest.approx(_entropy_rank(lam / lam.sum()), rel=1e-9)
    assert got["alpha_req"] == _metrics(X, views, "ssl-eval")["alpha_req"]


def test_reptrix_alpha_weighted_fit_over_ranks_11_to_100():
    X, views = _data(n=400, d=160)
    s = np.linalg.svd(X - X.mean(0), compute_uv=False)
    lam = s ** 2 / np.sum(s ** 2)
    ranks = np.arange(11, 101)
    # weighted least squares written as a scalar regression with weights 1/i
    w = 1.0 / ranks
    x, y = np.log(ranks), np.log(lam[ranks - 1])
    xm, ym = np.sum(w * x) / w.sum(), np.sum(w * y) / w.sum()
    alpha = -np.sum(w * (x - xm) * (y - ym)) / np.sum(w * (x - xm) ** 2)
    got = _metrics(X, views, "reptrix")
    assert got["alpha_req"] == pytest.approx(alpha, rel=1e-6)  # reptrix's weights are float32


def test_reptrix_alpha_needs_100_eigenvalues():
    X, views = _data(d=60)
    assert np.isnan(_metrics(X, views, "reptrix")["alpha_req"])


def test_reptrix_lidar_is_pca_of_the_lidar_matrix():
    X, views = _data()
    m = lidar_matrix(views, delta=1e-6)
    s = np.linalg.svd(m - m.mean(0), compute_uv=False)
    expected = _entropy_rank(s ** 2 / np.sum(s ** 2) + 1e-7)
    assert _metrics(X, views, "reptrix")["lidar"] == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="reproduces q = 2 views, got 3"):
        peers.reptrix_lidar((views[0], views[1], views[0]))


def test_convention_is_validated_and_recorded():
    X, views = _data(n=50, d=8)
    with pytest.raises(ValueError, match="convention must be one of .*got 'solo-learn'"):
        MetricOptions(convention="solo-learn")
    assert compute_group("spectral", X, options=MetricOptions(convention="reptrix")).details == {
        "convention": "reptrix"}
    assert compute_group("spectral", X).details == {}


def test_reptrix_package_values_reproduced():
    reptrix = pytest.importorskip("reptrix")
    torch = pytest.importorskip("torch")
    from reptrix import alpha, lidar, rankme
    X, views = _data(n=400, d=160)
    got = _metrics(X, views, "reptrix")
    assert got["rankme_centered"] == pytest.approx(rankme.get_rankme(torch.from_numpy(X)), abs=1e-6)
    a, _, r2, _ = alpha.get_alpha(torch.from_numpy(X))
    assert got["alpha_req"] == pytest.approx(a, abs=1e-6)
    assert got["alpha_req_r2"] == pytest.approx(r2, abs=1e-6)
    stacked = torch.from_numpy(np.stack(views, axis=1))
    assert got["lidar"] == pytest.approx(lidar.get_lidar(stacked, len(X), 2), abs=1e-6)
    assert reptrix.__name__ == "reptrix"

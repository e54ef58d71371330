"""Spectral metrics against numpy SVD / eigvalsh with the published formulas written plainly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssl_eval.metrics import compute_group, spectral
from ssl_eval.metrics.spectral import alpha_req_fit, spectral_metrics
from tests.helpers import embeddings


def _rankme_reference(X):
    s = np.linalg.svd(X, compute_uv=False)
    p = s / s.sum() + 1e-7
    return np.exp(-np.sum(p * np.log(p)))


def _data(n=60, d=8, seed=0):
    return embeddings(n, d, scales=np.linspace(2.0, 0.1, d), offset=1.5, seed=seed).X


@pytest.mark.parametrize("shape", [(60, 8), (5, 12), (30, 1)])
def test_rankme_matches_svd(shape):
    X = _data(*shape)
    values, _ = spectral_metrics(X)
    assert values["rankme"] == pytest.approx(_rankme_reference(X), rel=1e-6)
    assert values["rankme_centered"] == pytest.approx(
        _rankme_reference(X - X.mean(axis=0)), rel=1e-6)


def test_nesum_stable_rank_alpha_req_match_eigvalsh():
    X = _data()
    values, flags = spectral_metrics(X)
    cov_eig = np.sort(np.linalg.eigvalsh(np.cov(X, rowvar=False)))[::-1]
    assert values["nesum"] == pytest.approx(cov_eig.sum() / cov_eig[0], rel=1e-8)
    s = np.linalg.svd(X, compute_uv=False)
    assert values["stable_rank"] == pytest.approx((s ** 2).sum() / s[0] ** 2, rel=1e-8)
    # alpha-ReQ: least squares log lambda_i = c - alpha log i
    slope, intercept = np.polyfit(np.log(np.arange(1, len(cov_eig) + 1)), np.log(cov_eig), 1)
    assert values["alpha_req"] == pytest.approx(-slope, rel=1e-8)
    pred = intercept + slope * np.log(np.arange(1, len(cov_eig) + 1))
    r2 = 1 - np.sum((np.log(cov_eig) - pred) ** 2) / np.sum(
        (np.log(cov_eig) - np.log(cov_eig).mean()) ** 2)
    assert values["alpha_req_r2"] == pytest.approx(r2, rel=1e-8)
    assert flags == []


def test_alpha_req_recovers_power_law():
    lam = np.arange(1, 50, dtype=float) ** -1.3
    alpha, r2 = alpha_req_fit(lam)
    assert alpha == pytest.approx(1.3) and r2 == pytest.approx(1.0)
    flat_alpha, flat_r2 = alpha_req_fit(np.ones(5))
    assert flat_alpha == pytest.approx(0.0) and flat_r2 == 1.0
    assert np.isnan(alpha_req_fit(np.array([2.0]))[0])


def test_blocked_gram_equals_direct(monkeypatch):
    X = _data(n=50)
    direct, _ = spectral_metrics(X)
    monkeypatch.setattr(spectral, "_BLOCK_ROWS", 7)
    blocked, _ = spectral_metrics(X)
    for name, value in direct.items():
        assert blocked[name] == pytest.approx(value, rel=1e-9)


def test_float32_input_is_accumulated_in_float64():
    X = _data()
    values32, _ = spectral_metrics(X.astype(np.float32))
    assert values32["rankme"] == pytest.approx(_rankme_reference(X.astype(np.float32)
                                                                 .astype(np.float64)), rel=1e-6)


def test_collapsed_rows_equal():
    X = np.tile(np.array([[1.0, 2.0, 3.0]]), (20, 1))
    res = compute_group("spectral", X)
    assert "collapsed" in res.flags
    assert res.values["rankme"] == pytest.approx(1.0, abs=1e-4)  # rank one, uncentered
    assert res.values["stable_rank"] == pytest.approx(1.0)
    for name in ("rankme_centered", "nesum", "alpha_req", "alpha_req_r2"):
        assert np.isnan(res.values[name])


def test_all_zero_matrix():
    res = compute_group("spectral", np.zeros((10, 4)))
    assert "collapsed" in res.flags
    assert all(np.isnan(v) for v in res.values.values())


def test_one_dimension_has_too_few_eigenvalues():
    res = compute_group("spectral", _data(d=1))
    assert "too_few_eigenvalues" in res.flags
    assert res.values["rankme"] == pytest.approx(1.0, abs=1e-5)
    assert res.values["nesum"] == 1.0 and res.values["stable_rank"] == 1.0
    assert np.isnan(res.values["alpha_req"])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 20), d=st.integers(1, 10), seed=st.integers(0, 10_000))
def test_rankme_between_one_and_min_n_d(n, d, seed):
    X = np.random.default_rng(seed).normal(size=(n, d))
    values, _ = spectral_metrics(X)
    assert 1.0 - 1e-4 <= values["rankme"] <= min(n, d) + 1e-4
    assert values["rankme"] == pytest.approx(_rankme_reference(X), rel=1e-5)


def _nan_equal_approx(a, b):
    return (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, rel=1e-6, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 30), d=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_property_spectral_invariant_to_right_rotation_and_row_order(n, d, seed):
    # Every spectral metric depends on singular values only: X @ Q (Q orthogonal) keeps the
    # uncentered ones (rankme, stable_rank) and, since the column mean rotates too, the
    # centered ones (rankme_centered, nesum, alpha_req); reordering rows keeps both.
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=d) + rng.normal(size=d)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    base, _ = spectral_metrics(X)
    rotated, _ = spectral_metrics(X @ Q)
    shuffled, _ = spectral_metrics(X[rng.permutation(n)])
    for name, value in base.items():
        assert _nan_equal_approx(rotated[name], value), name
        assert _nan_equal_approx(shuffled[name], value), name


@pytest.mark.parametrize(("n", "offset"), [(200, 3.0), (200, 0.0), (10, 1.0), (200, -0.5)])
def test_both_spectra_from_one_reduction_equal_two_eigvalsh(n, offset):
    # both spectra come from one tridiagonal reduction of the centered scatter: equal, up to
    # eigvalsh's own rounding (about eps * ||G||), to an eigvalsh of each matrix
    X = _data(n=n, d=24, seed=2) + offset
    gram, sums = spectral.gram_and_sums(X)
    uncentered, centered = spectral.both_spectra(gram, sums, n)
    scatter = (X - X.mean(0)).T @ (X - X.mean(0))
    for got, matrix in ((uncentered, X.T @ X), (centered, scatter)):
        expected = np.clip(np.linalg.eigvalsh(matrix)[::-1], 0.0, None)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * expected[0])

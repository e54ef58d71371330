"""Intrinsic dimension (TwoNN, Levina-Bickel) against written-out formulas and data of known dimension."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import ortho_group

from ssl_eval.metrics import compute_group
from ssl_eval.metrics.dimension import intrinsic_dimension_metrics


def reference_ids(X, k=20):
    """TwoNN MLE and Levina-Bickel (MacKay-Ghahramani average) from the full distance matrix."""
    X = np.unique(np.asarray(X, dtype=np.float64), axis=0)
    n = X.shape[0]
    dist = squareform(pdist(X))
    np.fill_diagonal(dist, np.inf)
    nearest = np.sort(dist, axis=1)
    twonn = n / sum(np.log(nearest[i, 1] / nearest[i, 0]) for i in range(n))
    if n <= k:
        return {"id_twonn": twonn, "id_mle": float("nan")}
    inverse = [sum(np.log(nearest[i, k - 1] / nearest[i, j]) for j in range(k - 1)) / (k - 1) for i in range(n)]
    return {"id_twonn": twonn, "id_mle": 1.0 / np.mean(inverse)}


def _ids(X):
    res = compute_group("entropy", X)
    return {name: res.values[name] for name in ("id_twonn", "id_mle")}, res.flags


def test_matches_written_out_formulas():
    X = np.random.default_rng(0).normal(size=(150, 7)) * np.linspace(2.0, 0.2, 7)
    values, flags = _ids(X)
    assert values == pytest.approx(reference_ids(X), rel=1e-9, abs=1e-9)
    assert flags == ()


@pytest.mark.parametrize(("intrinsic", "ambient"), [(2, 10), (5, 5)])
def test_known_intrinsic_dimension(intrinsic, ambient):
    # a 2-D plane in 10-D (linear, rotated) and a 5-D Gaussian
    rng = np.random.default_rng(1)
    latent = rng.uniform(size=(1500, intrinsic)) if intrinsic == 2 else rng.normal(size=(1500, intrinsic))
    basis = ortho_group.rvs(ambient, random_state=2)[:intrinsic]
    values, _ = _ids(3.0 * latent @ basis + 7.0)
    assert values["id_twonn"] == pytest.approx(intrinsic, rel=0.12)
    assert values["id_mle"] == pytest.approx(intrinsic, rel=0.12)


def test_invariant_to_rotation_translation_scale_and_order():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 6))
    moved = (2.5 * X @ ortho_group.rvs(6, random_state=4) - 1.0)[rng.permutation(200)]
    assert _ids(moved)[0] == pytest.approx(_ids(X)[0], rel=1e-9)


def test_duplicates_are_kept_once_and_flagged():
    X = np.random.default_rng(5).normal(size=(60, 4))
    doubled = np.vstack([X, X[:25], X[:3]])
    values, flags = _ids(doubled)
    assert "duplicate_points" in flags
    assert values == pytest.approx(_ids(X)[0], rel=1e-12)
    assert all(np.isfinite(v) for v in values.values())


def test_collapsed_and_too_few_distinct_rows_give_nan_and_flags():
    values, flags = _ids(np.full((40, 5), 0.7))
    assert np.isnan(values["id_twonn"]) and np.isnan(values["id_mle"])
    assert {"collapsed", "duplicate_points", "id_n_lt_3"} <= set(flags)
    # 10 distinct rows: TwoNN defined, no 20th neighbour for the MLE
    X = np.random.default_rng(6).normal(size=(10, 3))
    values, flags = intrinsic_dimension_metrics(X)
    assert values["id_twonn"] == pytest.approx(reference_ids(X)["id_twonn"], rel=1e-9)
    assert np.isnan(values["id_mle"]) and flags == ["id_n_le_k"]


def test_equidistant_neighbours_give_nan_and_flag():
    # the corners of a unit square: r1 = r2 = 1 exactly for each, so sum log mu = 0
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    values, flags = intrinsic_dimension_metrics(square)
    assert np.isnan(values["id_twonn"]) and np.isnan(values["id_mle"])
    assert flags == ["id_n_le_k", "id_undefined"]


def test_non_finite_gives_nan_and_flag():
    X = np.random.default_rng(7).normal(size=(50, 3))
    X[4, 1] = np.inf
    values, flags = _ids(X)
    assert flags == ("non_finite",) and all(np.isnan(v) for v in values.values())

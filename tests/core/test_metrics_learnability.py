"""Cluster learnability (CLID) against a written-out kNN cross-validation, plus edge cases."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.model_selection import KFold

from ssl_eval.metrics import MetricOptions, compute_group
from ssl_eval.metrics.learnability import cluster_learnability
from tests.helpers import blobs


def reference_learnability(X, k, random_state=0, neighbours=5, folds=5):
    """k-means C1, then a majority vote of the 5 nearest training rows, fold by fold."""
    c1 = KMeans(n_clusters=k, n_init=1, random_state=random_state).fit_predict(X)
    accuracies = []
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=random_state).split(X):
        dist = np.linalg.norm(X[test][:, None, :] - X[train][None, :, :], axis=2)
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :neighbours]
        votes = [np.bincount(c1[train][row], minlength=k).argmax() for row in nearest]
        accuracies.append(np.mean(np.array(votes) == c1[test]))
    return float(np.mean(accuracies))


def _blobs(n=200, d=6, k=4, scale=6.0, seed=0):
    return blobs(n, d, k, spread=scale, seed=seed)[0]


@pytest.mark.parametrize("scale", [0.5, 6.0])
def test_matches_written_out_cross_validation(scale):
    X = _blobs(scale=scale)
    res = compute_group("clustering", X, options=MetricOptions(k=4), random_state=3)
    assert res.values["cluster_learnability"] == pytest.approx(reference_learnability(X, 4, random_state=3), abs=1e-12)


def test_separated_clusters_are_learnable_noise_less_so():
    separated = compute_group("clustering", _blobs(scale=20.0), options=MetricOptions(k=4)).values
    noise = compute_group("clustering", np.random.default_rng(1).normal(size=(200, 6)), options=MetricOptions(k=4)).values
    assert separated["cluster_learnability"] == 1.0
    assert noise["cluster_learnability"] < 0.95


def test_edge_cases_are_nan_with_flags():
    collapsed = compute_group("clustering", np.full((30, 4), 2.0), options=MetricOptions(k=3))
    assert np.isnan(collapsed.values["cluster_learnability"]) and "collapsed" in collapsed.flags
    two_points = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    few = compute_group("clustering", two_points, options=MetricOptions(k=2))
    assert np.isnan(few.values["cluster_learnability"]) and "n_lt_cl_folds" in few.flags
    with pytest.raises(ValueError, match="at least 5 rows"):
        cluster_learnability(two_points, np.array([0, 0, 1, 1]))

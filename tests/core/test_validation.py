"""The one input checker (ssl_eval/common/validation.py): what it converts, and its messages.

Every kind of bad input gets a message naming the argument, the expectation and the fix, the same
wherever the input is passed (registry, silhouette, entropy, probes).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import sparse

from ssl_eval.common.validation import check_labels, check_matrix
from ssl_eval.metrics import compute_group
from ssl_eval.metrics.clustering import silhouette_score
from ssl_eval.metrics.entropy import gaussian_entropy, knn_entropy
from ssl_eval.probe import knn_probe, linear_probe


def test_float32_is_kept_without_a_copy_and_integers_become_float64():
    X = np.ones((3, 2), np.float32)
    assert check_matrix(X) is X
    assert check_matrix(np.ones((3, 2), np.int64)).dtype == np.float64
    assert check_matrix([[1, 2], [3, 4]]).dtype == np.float64
    assert check_matrix(X, dtype=np.float64).dtype == np.float64  # the probes ask for one dtype
    with_nan = np.array([[np.nan, 1.0]])
    assert check_matrix(with_nan, allow_non_finite=True) is with_nan  # the registry flags these itself


@pytest.mark.parametrize("value, kwargs, error, match", [
    (sparse.csr_matrix(np.eye(3)), {}, TypeError, r"X is a sparse matrix; pass a dense array instead, e.g. X.toarray\(\)"),
    (np.array([["a", "b"]]), {}, TypeError, r"X must be a real numeric array, got dtype <U1; convert it with np.asarray\(X, dtype=np.float32\)"),
    (np.ones((2, 2), complex), {"name": "train_X"}, TypeError, r"train_X must be a real numeric array, got dtype complex128"),
    (np.ones(5), {}, ValueError, r"X must be 2-D \(n_samples, n_features\), got shape \(5,\); reshape it, e.g. X.reshape\(len\(X\), -1\)"),
    (np.ones((0, 3)), {}, ValueError, r"X must have at least one row and one column, got shape \(0, 3\); embed more samples"),
    (np.ones((4, 0)), {}, ValueError, r"X must have at least one row and one column, got shape \(4, 0\)"),
    (np.ones((3, 2)), {"min_rows": 4, "rows_reason": "why"}, ValueError, r"X must have at least 4 rows and one column \(why\), got shape \(3, 2\)"),
    (np.array([[np.nan, np.inf], [0.0, 1.0]]), {"name": "views[1]"}, ValueError,
     r"views\[1\] contains NaN or inf \(2 of 4 entries\); drop or fix the non-finite rows first"),
])
def test_matrix_messages(value, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_matrix(value, **kwargs)


def test_label_messages():
    assert check_labels([0, 1, 1], n_rows=3).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match=r"train_y must be 1-D with one label per row of train_X \(3\), got shape \(2,\); pass one label per"):
        check_labels([0, 1], n_rows=3, name="train_y", rows_of="train_X")
    with pytest.raises(ValueError, match=r"labels must be 1-D with one label per row of X \(2\), got shape \(2, 1\)"):
        check_labels([[0], [1]], n_rows=2)


def test_every_entry_point_says_the_same_for_the_same_bad_input():
    """A 1-D array and a string array, passed to each public function that takes embeddings."""
    rng = np.random.default_rng(0)
    y = np.arange(20) % 2
    good = rng.normal(size=(20, 3))
    calls: dict[str, list[Callable[[np.ndarray], object]]] = {
        "X": [lambda X: compute_group("spectral", X), lambda X: silhouette_score(X, y),
              lambda X: gaussian_entropy(X), lambda X: knn_entropy(X)],
        "train_X": [lambda X: linear_probe(X, y, good, y, solver="sklearn"), lambda X: knn_probe(X, y, good, y)],
        "test_X": [lambda X: knn_probe(good, y, X, y)],
    }
    for name, functions in calls.items():
        for call in functions:
            with pytest.raises(ValueError, match=rf"^{name} must be 2-D \(n_samples, n_features\), got shape \(20,\)"):
                call(np.zeros(20))
            with pytest.raises(TypeError, match=rf"^{name} must be a real numeric array, got dtype <U1"):
                call(np.full((20, 3), "a"))


def test_non_finite_embeddings_are_a_flag_in_the_registry_and_an_error_elsewhere():
    X = np.random.default_rng(0).normal(size=(20, 3))
    X[3, 1] = np.nan
    result = compute_group("spectral", X)
    assert result.flags == ("non_finite",) and all(np.isnan(v) for v in result.values.values())
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(1 of 60 entries\); the silhouette is undefined"):
        silhouette_score(X, np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(1 of 60 entries\); distances to them are undefined"):
        knn_entropy(X)

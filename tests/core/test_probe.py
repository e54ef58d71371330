"""Linear and kNN probes against plainly written references."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ssl_eval import probe
from ssl_eval.probe import knn_probe, linear_probe


def _split(n=200, d=8, k=3, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    y = rng.integers(0, k, n)
    X = centers[y] + noise * rng.normal(size=(n, d))
    return X[: n // 2], y[: n // 2], X[n // 2:], y[n // 2:]


def test_linear_probe_matches_sklearn():
    a, b, c, d = _split(noise=3.0)
    scaler = StandardScaler().fit(a)
    ref = LogisticRegression(max_iter=1000, random_state=0).fit(scaler.transform(a), b)
    expected = np.mean(ref.predict(scaler.transform(c)) == d)
    got = linear_probe(a, b, c, d)
    assert type(got) is float and got == pytest.approx(expected)


def test_linear_probe_separable_is_perfect_and_string_labels():
    a, b, c, d = _split(noise=0.1)
    names = np.array(["cat", "dog", "eel"])
    assert linear_probe(a, names[b], c, names[d]) == 1.0


def _knn_reference(a, b, c, k, t):
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    cn = c / np.linalg.norm(c, axis=1, keepdims=True)
    classes = np.unique(b)
    preds = []
    for row in cn:
        sims = an @ row
        top = np.argsort(-sims)[:k]
        votes = {cl: 0.0 for cl in classes}
        for j in top:
            votes[b[j]] += np.exp(sims[j] / t)
        preds.append(max(classes, key=lambda cl: votes[cl]))
    return np.array(preds)


@pytest.mark.parametrize("k, t", [(1, 0.07), (5, 0.5), (20, 0.07)])
def test_knn_probe_matches_plain_reference(k, t):
    a, b, c, d = _split(noise=3.0, seed=1)
    expected = np.mean(_knn_reference(a, b, c, k, t) == d)
    assert knn_probe(a, b, c, d, k=k, temperature=t) == pytest.approx(expected)


def test_knn_probe_blocks_and_large_k(monkeypatch):
    a, b, c, d = _split(noise=3.0, seed=2)
    full = knn_probe(a, b, c, d, k=7)
    monkeypatch.setattr(probe, "_BLOCK_ELEMENTS", 3 * len(a))
    assert knn_probe(a, b, c, d, k=7) == full
    assert 0.0 <= knn_probe(a, b, c, d, k=10_000) <= 1.0


def test_probes_reject_non_finite():
    a, b, c, d = _split()
    a = a.copy()
    a[0, 0] = np.nan
    with pytest.raises(ValueError, match="train_X contains NaN or inf"):
        linear_probe(a, b, c, d)
    with pytest.raises(ValueError, match="train_X contains NaN or inf"):
        knn_probe(a, b, c, d)


def test_probe_boundary_errors():
    a, b, c, d = _split()
    with pytest.raises(ValueError, match="same number of features"):
        linear_probe(a, b, c[:, :3], d)
    with pytest.raises(ValueError, match="one label per row of test_X"):
        knn_probe(a, b, c, d[:-1])
    with pytest.raises(ValueError, match="single class"):
        linear_probe(a, np.zeros(len(b)), c, d)
    with pytest.raises(ValueError, match="k must be a positive int"):
        knn_probe(a, b, c, d, k=0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        knn_probe(a, b, c, d, temperature=0.0)


@pytest.mark.parametrize("X", [np.full((40, 3), 2.0), np.zeros((40, 3)),
                               np.random.default_rng(0).normal(size=(40, 1))],
                         ids=["collapsed", "zero_rows", "one_dimension"])
def test_probes_defined_on_degenerate_embeddings(X):
    y = np.arange(40) % 2
    for acc in (linear_probe(X, y, X, y), knn_probe(X, y, X, y, k=50)):
        assert type(acc) is float and 0.0 <= acc <= 1.0
    if np.ptp(X) == 0.0:  # nothing to learn: every prediction is one class, half are right
        assert linear_probe(X, y, X, y) == 0.5

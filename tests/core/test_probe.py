"""Linear and kNN probes against plainly written references."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ssl_eval.probe import knn_probe, linear_probe, probes


def _split(n=200, d=8, k=3, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    y = rng.integers(0, k, n)
    X = centers[y] + noise * rng.normal(size=(n, d))
    return X[: n // 2], y[: n // 2], X[n // 2:], y[n // 2:]


def _sklearn_accuracy(a, b, c, d):
    scaler = StandardScaler().fit(a)
    ref = LogisticRegression(max_iter=1000, random_state=0).fit(scaler.transform(a), b)
    return float(np.mean(ref.predict(scaler.transform(c)) == d)), ref, scaler


# Overlapping classes (accuracy well below 1, so a poorly converged fit shows), binary and
# multi-class, correlated features, more test rows than 0.5 points needs.
@pytest.mark.parametrize("n, dim, k, noise, seed", [
    (4000, 16, 4, 4.0, 0), (4000, 32, 10, 5.0, 1), (3000, 24, 2, 6.0, 2), (2000, 64, 5, 9.0, 3),
])
def test_linear_probe_within_half_a_point_of_sklearn(n, dim, k, noise, seed):
    a, b, c, d = _split(n=n, d=dim, k=k, seed=seed, noise=noise)
    mixing = np.random.default_rng(seed).normal(size=(dim, dim))  # correlated features
    a, c = a @ mixing, c @ mixing
    expected, _, _ = _sklearn_accuracy(a, b, c, d)
    got = linear_probe(a, b, c, d)
    assert type(got) is float and 0.3 < expected < 0.97
    assert abs(got - expected) <= 0.005
    assert linear_probe(a, b, c, d, solver="sklearn") == pytest.approx(expected)


@pytest.mark.parametrize("k", [2, 6])
def test_torch_solver_reaches_sklearns_objective(k):
    """The fitted weights minimise scikit-learn's own objective as well as scikit-learn does.

    Binary: one binomial vector, multi-class: the symmetric softmax. They meet its convergence test
    there, evaluated in float64: max |gradient of the per-sample objective| <= tol = 1e-4 (10 %
    slack for the float32 sums the solver worked with).
    """
    import torch

    from ssl_eval.probe.logistic import fit_logistic

    a, b, _, _ = _split(n=2000, d=12, k=k, seed=4, noise=4.0)
    _, ref, scaler = _sklearn_accuracy(a, b, a, b)
    Z = scaler.transform(a)
    n = len(Z)

    def objective_and_gradient(W, intercept):  # C * sum CE + ||W||^2 / 2, as scikit-learn minimises it
        logits = Z @ W + intercept
        if k == 2:
            logits = np.stack([np.zeros(n), logits.ravel()], 1)
        log_p = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        residual = np.exp(log_p) - np.eye(logits.shape[1])[b]
        if k == 2:
            residual = residual[:, 1:]
        value = -log_p[np.arange(n), b].sum() + 0.5 * np.sum(W ** 2)
        return value, np.vstack([Z.T @ residual + W, residual.sum(0)[None]])

    fit = fit_logistic(torch.as_tensor(Z, dtype=torch.float32), torch.as_tensor(b), k)
    W, intercept = fit.weights.double().numpy(), fit.intercepts.double().numpy()
    if k == 2:  # the symmetric pair (w0, w1) is the binomial w = w1 - w0
        W, intercept = W[:, 1:] - W[:, :1], intercept[1:] - intercept[:1]
    ours, gradient = objective_and_gradient(W, intercept)
    theirs, _ = objective_and_gradient(ref.coef_.T, ref.intercept_)
    assert np.abs(gradient / n).max() <= 1.1e-4  # scikit-learn divides its objective by n
    assert ours <= theirs * (1 + 1e-5)
    assert fit.evaluations < 1000


def test_linear_probe_float32_input_constant_feature_and_bad_solver():
    a, b, c, d = _split(n=1000, d=6, noise=3.0, seed=5)
    a, c = np.c_[a, np.full(len(a), 7.0)], np.c_[c, np.full(len(c), 7.0)]
    expected, _, _ = _sklearn_accuracy(a, b, c, d)
    assert abs(linear_probe(a.astype(np.float32), b, c.astype(np.float32), d) - expected) <= 0.005
    with pytest.raises(ValueError, match="solver must be one of"):
        linear_probe(a, b, c, d, solver="newton")  # type: ignore[arg-type]  # the test: an unknown solver is refused


@pytest.mark.parametrize("solver", ["torch", "sklearn"])
def test_linear_probe_separable_is_perfect_and_string_labels(solver):
    a, b, c, d = _split(noise=0.1)
    names = np.array(["cat", "dog", "eel"])
    assert linear_probe(a, names[b], c, names[d], solver=solver) == 1.0


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
    monkeypatch.setattr(probes, "_BLOCK_ELEMENTS", 3 * len(a))
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


def test_small_fits_run_on_one_thread_and_overlapping_fits_restore_the_count(monkeypatch):
    """Torch's thread count is process-wide: a small fit runs on one thread and overlapping fits restore it.

    Fits that overlap in threads (as in one Dask worker) leave the count as they found it.
    """
    import threading

    import torch

    from ssl_eval.probe import logistic
    a, b, _, _ = _split(n=600, d=8, k=3, seed=5, noise=2.0)
    X, codes = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b)
    seen, inside = [], threading.Barrier(3)
    fit = logistic._fit

    def observed_fit(*args, **kwargs):
        inside.wait(timeout=30)  # all three fits are inside at once
        seen.append(torch.get_num_threads())
        return fit(*args, **kwargs)

    monkeypatch.setattr(logistic, "_fit", observed_fit)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        runs = [threading.Thread(target=logistic.fit_logistic, args=(X, codes, 3)) for _ in range(3)]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        assert seen == [1, 1, 1]
        assert torch.get_num_threads() == 3
        # a large fit: its products go through numpy's BLAS (own threads), the rest on one torch thread
        assert not logistic._host_blas(X, 3)
        monkeypatch.setattr(logistic, "_SINGLE_THREAD_WORK", 0)
        assert logistic._host_blas(X, 3)
        inside = threading.Barrier(1)
        logistic.fit_logistic(X, codes, 3)
        assert seen[-1] == 1 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_a_large_cpu_fit_through_numpys_blas_reaches_the_same_optimum(monkeypatch):
    """The products through numpy's BLAS (fits above the single-thread size) give the torch path's fit, up to rounding."""
    import torch

    from ssl_eval.probe import logistic
    a, b, _, _ = _split(n=2000, d=32, k=4, seed=3, noise=1.0)
    X, codes = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b)
    through_torch = logistic.fit_logistic(X, codes, 4)
    monkeypatch.setattr(logistic, "_SINGLE_THREAD_WORK", 0)
    assert logistic._host_blas(X, 4)
    through_numpy = logistic.fit_logistic(X, codes, 4)
    # float32 sums in another order: the same optimum to the solver's tolerance
    assert through_numpy.loss == pytest.approx(through_torch.loss, rel=1e-5)
    torch.testing.assert_close(through_numpy.weights, through_torch.weights, rtol=1e-2, atol=1e-3)
    torch.testing.assert_close(through_numpy.intercepts, through_torch.intercepts, rtol=1e-2, atol=1e-3)

"""Reference accuracies that need labels: a linear probe and a cosine kNN probe.

* ``linear_probe``: multinomial logistic regression with L2 strength C=1 (scikit-learn's
  default, intercept not penalised) on features standardised with the training split's
  mean and standard deviation (a constant feature is left unscaled). ``solver="torch"``
  (default) fits it full-batch with preconditioned L-BFGS in float32 on the GPU when there
  is one (:mod:`ssl_eval.probe.logistic`); ``solver="sklearn"`` fits the same objective with
  scikit-learn's ``LogisticRegression(max_iter=max_iter)`` in float64, the reference the
  tests and ``benchmarks/probe.py`` compare with (test accuracy within 0.5 points).
* ``knn_probe``: cosine-similarity kNN with votes weighted exp(sim / T), as in Wu et al.
  2018 and DINO (k=20, T=0.07 by default); test rows are processed in blocks. If k exceeds
  the number of training rows, all training rows vote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ssl_eval.common.threads import quiet_known_warnings
from ssl_eval.common.validation import check_labels, check_matrix

if TYPE_CHECKING:
    import torch

__all__ = ["SOLVERS", "knn_probe", "linear_probe"]

SOLVERS = ("torch", "sklearn")

_BLOCK_ELEMENTS = 1 << 22


def _check_split(train_X: ArrayLike, train_y: ArrayLike, test_X: ArrayLike, test_y: ArrayLike, *,
                 dtype: DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    fix = "the encoder produced non-finite embeddings; fix or drop that checkpoint"
    train_X = check_matrix(train_X, name="train_X", non_finite_fix=fix, dtype=dtype)
    test_X = check_matrix(test_X, name="test_X", non_finite_fix=fix, dtype=dtype)
    if train_X.shape[1] != test_X.shape[1]:
        raise ValueError(f"train_X and test_X must have the same number of features, got "
                         f"{train_X.shape[1]} and {test_X.shape[1]}; embed both splits with the same encoder and layer.")
    train_y = check_labels(train_y, n_rows=train_X.shape[0], name="train_y", rows_of="train_X")
    test_y = check_labels(test_y, n_rows=test_X.shape[0], name="test_y", rows_of="test_X")
    if np.unique(train_y).size < 2:
        raise ValueError("train_y holds a single class; a probe needs at least 2 classes. "
                         "Use a labelled split with several classes.")
    return train_X, train_y, test_X, test_y


def linear_probe(train_X: ArrayLike, train_y: ArrayLike, test_X: ArrayLike, test_y: ArrayLike, *, random_state: int = 0,
                 max_iter: int = 1000, solver: Literal["torch", "sklearn"] = "torch", device: str | torch.device | None = None) -> float:
    """Test accuracy of an L2 (C=1) multinomial logistic regression on standardised features.

    Args:
        train_X: (n_train, D) real array, finite.
        train_y: (n_train,) labels, at least 2 classes.
        test_X: (n_test, D) real array, finite.
        test_y: (n_test,) labels.
        random_state: picks the rows the torch solver's preconditioner is estimated on when
            the training split is large (the fit itself starts from zero and is deterministic).
        max_iter: iterations of the solver at most.
        solver: ``"torch"`` (float32 L-BFGS, the fast default) or ``"sklearn"`` (the float64 reference).
        device: torch solver only; None: CUDA when available, else the CPU.

    Returns:
        The test accuracy, in [0, 1].

    Raises:
        TypeError: an embedding array is not real numeric.
        ValueError: shapes that do not fit, non-finite embeddings, a single training class, or
            an unknown ``solver``.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}; 'torch' is the fast default, "
                         "'sklearn' the float64 reference.")
    if solver == "sklearn":
        return _sklearn_probe(*_check_split(train_X, train_y, test_X, test_y), random_state, max_iter)
    import torch

    from ssl_eval.probe.logistic import default_device, fit_logistic

    train_X, train_y, test_X, test_y = _check_split(train_X, train_y, test_X, test_y, dtype=np.float32)
    classes, codes = np.unique(train_y, return_inverse=True)
    device = torch.device(device) if device is not None else default_device()
    X = torch.as_tensor(train_X, device=device)
    mean = X.mean(0, dtype=torch.float64).float()
    X = X - mean
    std = X.square().mean(0).sqrt()
    # a (numerically) constant feature keeps scale 1, as StandardScaler does
    std = torch.where(std > 1e-6 * (1.0 + mean.abs()), std, torch.ones_like(std))
    X /= std
    fit = fit_logistic(X, torch.as_tensor(codes.ravel(), device=device), classes.size,
                       max_iter=max_iter, random_state=random_state)
    del X
    test = (torch.as_tensor(test_X, device=device) - mean) / std
    predicted = classes[fit.decision(test).argmax(1).cpu().numpy()]
    return float(np.mean(predicted == test_y))


def _sklearn_probe(train_X: np.ndarray, train_y: np.ndarray, test_X: np.ndarray, test_y: np.ndarray, random_state: int, max_iter: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_X)
    model = LogisticRegression(max_iter=max_iter, random_state=random_state)
    quiet_known_warnings()  # "lbfgs failed to converge" at max_iter
    model.fit(scaler.transform(train_X), train_y)
    return float(np.mean(model.predict(scaler.transform(test_X)) == test_y))


def knn_probe(train_X: ArrayLike, train_y: ArrayLike, test_X: ArrayLike, test_y: ArrayLike, *, k: int = 20,
              temperature: float = 0.07) -> float:
    """Test accuracy of a cosine kNN with exp(sim / temperature) weighted votes.

    Args:
        train_X: (n_train, D) real array, finite.
        train_y: (n_train,) labels, at least 2 classes.
        test_X: (n_test, D) real array, finite.
        test_y: (n_test,) labels.
        k: neighbours that vote (all training rows when fewer).
        temperature: T of the vote weights exp(sim / T), > 0.

    Returns:
        The test accuracy, in [0, 1].

    Raises:
        TypeError: an embedding array is not real numeric.
        ValueError: shapes that do not fit, non-finite embeddings, a single training class, or
            ``k`` < 1 or ``temperature`` <= 0.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}; the usual choice is 20.")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}; the usual is 0.07.")
    train_X, train_y, test_X, test_y = _check_split(train_X, train_y, test_X, test_y)
    classes, train_codes = np.unique(train_y, return_inverse=True)
    train_codes = train_codes.ravel()

    def unit(a: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(a, axis=1, keepdims=True)
        return a / np.where(norms == 0.0, 1.0, norms)

    train_Z, test_Z = unit(train_X), unit(test_X)
    n_train, n_classes = train_Z.shape[0], classes.size
    k = min(k, n_train)
    block = max(1, _BLOCK_ELEMENTS // n_train)
    correct = 0
    for start in range(0, test_Z.shape[0], block):
        sims = test_Z[start:start + block] @ train_Z.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        weights = np.exp((top_sims - 1.0) / temperature)  # shifted by max sim 1: same argmax
        votes = np.zeros((sims.shape[0], n_classes))
        rows = np.repeat(np.arange(sims.shape[0]), k)
        np.add.at(votes, (rows, train_codes[top].ravel()), weights.ravel())
        predicted = classes[np.argmax(votes, axis=1)]
        correct += int(np.sum(predicted == test_y[start:start + block]))
    return float(correct / test_Z.shape[0])

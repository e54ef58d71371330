"""Multinomial logistic regression with an L2 penalty, fitted full-batch in torch.

The objective is scikit-learn's ``LogisticRegression(C=C)`` (lbfgs, multinomial, intercept
not penalised), written per sample:

    mean_i CE(x_i W + b, y_i) + ||W||^2 / (2 C n)

which has the same minimiser as scikit-learn's ``C * sum_i CE_i + ||W||^2 / 2``. With two
classes scikit-learn fits one binomial weight vector w = w_1 - w_0 penalised by ||w||^2 / 2;
the symmetric two-class softmax with the penalty doubled has exactly that minimiser, so
the binary case is fitted that way.

Solver: L-BFGS (``torch.optim.LBFGS``, strong Wolfe line search, history 10) on
``(W; b) = L^-T U``, where ``L L^T = S / K + delta I`` is the Cholesky factor of a fixed
preconditioner: ``S`` is the second moment of the (standardised) training rows with a
constant 1 appended (so the intercepts are scaled with the weights), estimated on at most
``max(4 D, 4096)`` rows drawn with ``random_state``; ``S / K`` is the curvature of the loss
at ``W = 0`` up to the class coupling; ``delta = max(penalty, 1e-3)`` keeps the factor well
conditioned in float32. Gradients are written out (no autograd graph): one ``X @ W`` and
one ``(P^T X)^T`` per evaluation. Data and iterates are float32, the preconditioner is
factored in float64. Runs on CUDA when available (full float32: TF32 is not switched on
here).

Threads: an evaluation smaller than ``_SINGLE_THREAD_WORK`` multiply-adds (n * D * K; a
5,000 x 128 probe of 10 classes is 6.4e6) runs on one CPU thread. There, intra-op threads
cost more in synchronisation than they save, and far more on a shared machine or beside
other tasks of a threaded Dask worker: a 5,000 x 128 MNIST probe took 10 s on one thread
and 87 to 137 s on two at load average 13 on 2 cores (the same 91 evaluations).

Stops when ``max |grad_U| <= tol``, when the loss or the step changes by less than 1e-10,
or after ``max_iter`` iterations (the result is then the last iterate, as scikit-learn's).
With the intercepts left out of the preconditioner a 5,000 x 128 MNIST probe took 85
evaluations, a 20,000 x 512 ResNet-18 one 280 and a 50,000 x 2,048 synthetic one 45; now
51, 186 and 37, each at a lower final loss. Stopping at scikit-learn's own test instead
(``max |grad| <= tol`` in the original coordinates, weaker here) took 35, 122 and 21 but
left the large fit's loss 17 % higher and its accuracy 0.6 points lower: not done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["LogisticFit", "default_device", "fit_logistic"]

_PRECONDITION_ROWS = 4096
_MIN_DAMPING = 1e-3
_SINGLE_THREAD_WORK = 1 << 26

_threads_lock = threading.Lock()
_single_threaded = 0
_saved_threads = 1


@contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """Set torch's intra-op threads to one for the first of overlapping fits; the last one restores them.

    The thread count is process-wide and overlapping fits are threads of one Dask worker.
    """
    global _single_threaded, _saved_threads
    with _threads_lock:
        if _single_threaded == 0:
            _saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _single_threaded += 1
    try:
        yield
    finally:
        with _threads_lock:
            _single_threaded -= 1
            if _single_threaded == 0:
                torch.set_num_threads(_saved_threads)


def default_device() -> torch.device:
    """The device probes fit on by default.

    Returns:
        CUDA when available, else the CPU.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class LogisticFit:
    """Weights (D, K) and intercepts (K,) on the device, and what the solver did."""

    weights: torch.Tensor
    intercepts: torch.Tensor
    evaluations: int
    loss: float

    def decision(self, X: torch.Tensor) -> torch.Tensor:
        """The decision values (logits) of rows ``X``.

        Args:
            X: (n, D) float32 tensor on the fit's device, standardised as the training rows were.

        Returns:
            (n, K) logits ``X @ weights + intercepts``; the predicted class is their argmax.
        """
        return torch.addmm(self.intercepts, X, self.weights)


def _preconditioner(X: torch.Tensor, n_classes: int, damping: float, random_state: int) -> torch.Tensor:
    n, d = X.shape
    m = min(n, max(4 * d, _PRECONDITION_ROWS))
    if m < n:
        pick = np.sort(np.random.default_rng(random_state).choice(n, m, replace=False))
        rows = X[torch.as_tensor(pick, device=X.device)]
    else:
        rows = X
    # the second moment of the rows with a constant 1 appended: the intercepts are
    # preconditioned with the weights (left unscaled, they converged last and set the
    # number of evaluations)
    moment = torch.empty(d + 1, d + 1, dtype=torch.float64, device=X.device)
    moment[:d, :d] = (rows.T @ rows).double() / m
    moment[:d, d] = moment[d, :d] = rows.mean(0).double()
    moment[d, d] = 1.0
    eye = torch.eye(d + 1, dtype=torch.float64, device=X.device)
    return torch.linalg.cholesky(moment / n_classes + damping * eye).float()


def fit_logistic(
    X: torch.Tensor, codes: torch.Tensor, n_classes: int, *, C: float = 1.0, max_iter: int = 1000,
    tol: float = 1e-4, random_state: int = 0,
) -> LogisticFit:
    """Fit the L2-penalised multinomial logistic regression of the module doc on ``X``'s device.

    Args:
        X: (n, D) float32 tensor (standardise it first).
        codes: (n,) integer class codes in ``[0, n_classes)``, on ``X``'s device.
        n_classes: K, the number of classes.
        C: inverse penalty strength, as scikit-learn's.
        max_iter: L-BFGS iterations at most.
        tol: stop when the largest preconditioned gradient entry is at most this.
        random_state: seed of the rows the preconditioner is estimated on.

    Returns:
        The :class:`LogisticFit`: (D, K) weights, (K,) intercepts, evaluations, final loss.
    """
    n, d = X.shape
    if X.device.type == "cpu" and n * d * n_classes < _SINGLE_THREAD_WORK:
        with _one_cpu_thread():
            return _fit(X, codes, n_classes, C=C, max_iter=max_iter, tol=tol, random_state=random_state)
    return _fit(X, codes, n_classes, C=C, max_iter=max_iter, tol=tol, random_state=random_state)


def _fit(X: torch.Tensor, codes: torch.Tensor, n_classes: int, *, C: float, max_iter: int, tol: float,
         random_state: int) -> LogisticFit:
    n, d = X.shape
    penalty = (2.0 if n_classes == 2 else 1.0) / (C * n)
    factor = _preconditioner(X, n_classes, max(penalty, _MIN_DAMPING), random_state)
    targets = torch.nn.functional.one_hot(codes, n_classes).to(X.dtype)
    u = torch.zeros(d + 1, n_classes, device=X.device, requires_grad=True)  # preconditioned (W; b)
    optimizer = torch.optim.LBFGS(
        [u], lr=1, max_iter=max_iter, history_size=10, tolerance_grad=tol, tolerance_change=1e-10,
        line_search_fn="strong_wolfe",
    )
    evaluations = 0
    last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # (u, loss, gradient)

    def parameters() -> torch.Tensor:  # (D + 1, K): the weights, then the intercepts
        return torch.linalg.solve_triangular(factor.T, u, upper=True)

    def closure() -> torch.Tensor:
        nonlocal evaluations, last
        with torch.no_grad():
            if last is not None and torch.equal(last[0], u):  # L-BFGS re-evaluates where it stopped
                u.grad = last[2].clone()
                return last[1]
            evaluations += 1
            theta = parameters()
            W = theta[:-1]
            # X @ (W^T)^T and (P^T)^T-contiguous X: the layouts torch's CPU GEMM (MKL) runs fast for
            # these 10-column products; X @ W and P^T @ X as views took 0.15 s and 0.14 s against
            # 0.05 s and 0.09 s at 50,000 x 2,048 x 10, and X^T P 0.6 s
            logits = torch.addmm(theta[-1], X, W.T.contiguous().T)
            log_p = torch.log_softmax(logits, 1)
            loss = -torch.vdot(log_p.ravel(), targets.ravel()) / n + 0.5 * penalty * W.square().sum()
            residual = log_p.exp_().sub_(targets).div_(n)  # (softmax - one-hot) / n
            grad = torch.cat([(residual.T.contiguous() @ X).T + penalty * W, residual.sum(0)[None]])
            u.grad = torch.linalg.solve_triangular(factor, grad, upper=False).contiguous()
            last = (u.detach().clone(), loss, u.grad.clone())
        return loss

    _newton_first_step(optimizer, closure, max_iter)
    with torch.no_grad():
        final = float(closure())
        theta = parameters()
        return LogisticFit(theta[:-1].clone(), theta[-1].clone(), evaluations, final)


def _newton_first_step(optimizer: torch.optim.LBFGS, closure: Callable[[], torch.Tensor], max_iter: int) -> None:
    """Run L-BFGS with a first step of length 1, then the rest of its ``max_iter`` iterations.

    At zero the preconditioned Hessian is the identity up to the class coupling, so the unit
    step along the gradient is Newton's. torch's L-BFGS would first try ``1 / |g|_1`` instead
    (1 / 221 on a 50,000 x 2,048 probe) and spend three line-search evaluations growing it:
    loss 1.10 after four evaluations against 0.45 after two. Its first step is
    ``min(1, 1 / |g|_1) * lr``, so one iteration runs with ``lr = max(1, |g|_1)``, the others
    with ``lr = 1``; the closure answers a repeated point from its cache.
    """
    closure()
    (group,) = optimizer.param_groups
    (u,) = group["params"]
    gradient_l1 = float(u.grad.abs().sum()) if u.grad is not None else 1.0  # the closure set u.grad
    group.update(lr=max(1.0, gradient_l1), max_iter=1)
    optimizer.step(closure)
    if max_iter > 1:
        group.update(lr=1, max_iter=max_iter - 1)
        optimizer.step(closure)

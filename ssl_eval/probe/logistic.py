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
at ``W = 0`` up to the class coupling, so the first step is Newton's there (length 1, see
:func:`_iterate`); ``delta = max(penalty, 3e-2)`` keeps the factor well conditioned in
float32 and damps the rows' weak directions. Gradients are written out (no autograd graph):
one ``X @ W`` and one ``(P^T X)^T`` per evaluation, two passes over ``X``. Data and iterates are float32, the preconditioner is
factored in float64. Runs on CUDA when available (full float32: TF32 is not switched on
here).

Threads: an evaluation smaller than ``_SINGLE_THREAD_WORK`` multiply-adds (n * D * K; a
5,000 x 128 probe of 10 classes is 6.4e6) runs on one CPU thread. There, intra-op threads
cost more in synchronisation than they save, and far more on a shared machine or beside
other tasks of a threaded Dask worker: a 5,000 x 128 MNIST probe took 10 s on one thread
and 87 to 137 s on two at load average 13 on 2 cores (the same 91 evaluations). A larger
fit on the CPU runs its two products per evaluation and the preconditioner's Gram through
numpy's BLAS, with its own threads (:func:`_host_blas`), and everything else on one torch
thread: at 50,000 x 2,048 that took the fit from 5.8 s to 4.0 s on two idle cores (33
evaluations and the same loss either way), L-BFGS's ~650 small dot products no longer
waking a second torch thread each.

Stops when ``max |L_0^-1 grad| <= tol``, with ``L_0`` the factor for ``delta = max(penalty,
1e-3)`` (the test this solver had when it preconditioned with that factor), when the loss
or the step changes by less than 1e-10, or after ``max_iter`` iterations (the result is
then the last iterate, as scikit-learn's).
With the intercepts left out of the preconditioner a 5,000 x 128 MNIST probe took 85
evaluations, a 20,000 x 512 ResNet-18 one 280 and a 50,000 x 2,048 synthetic one 45; now
51, 186 and 37, each at a lower final loss. Stopping at scikit-learn's own test instead
(``max |grad| <= tol`` in the original coordinates, weaker here) took 35, 122 and 21 but
left the large fit's loss 17 % higher and its accuracy 0.6 points lower: not done.
Newton's first step and ``delta = 3e-2`` (issue 28) took these 5,000 x 128 MNIST (untrained
demo CNN), 5,000 x 64 MNIST (SimCLR) and 50,000 x 2,048 synthetic probes from 56, 44 and 37
evaluations to 53, 40 and 33, each at a final loss no higher; run on, they reach the loss
the old solver stopped at after 52, 37 and 32 evaluations instead of 56, 44 and 37 (with the
first step and delta 1e-3, 3e-3, 1e-2, 1e-1: 57/53/54/53, 42/41/37/41, 35/34/34/29). Measured and not kept:
deltas 3e-4 to 1e-1 (with the stopping test kept, each stopped one of the three at a higher loss),
L-BFGS history 30 or 100 (34 evaluations, as 10 did), a warm start fitted on a subsample
(33 full evaluations after it), a Newton-CG step with the Hessian on the preconditioner's
8,192 rows (those rows see too few of the rows near the boundary: 100 steps left the loss
at 0.044 against 0.016), and one pass over ``X`` in row blocks instead of two (no faster:
the two products are not bandwidth-bound enough for it to pay).
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
_DAMPING = 3e-2
_STOP_DAMPING = 1e-3
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


def _preconditioners(X: torch.Tensor, n_classes: int, dampings: tuple[float, ...],
                     random_state: int) -> list[torch.Tensor]:
    """The float32 Cholesky factors of ``S / K + delta I``, one for each ``delta`` of ``dampings``."""
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
    if _host_blas(X, n_classes):  # numpy's A.T @ A is one symmetric rank-k update (ssyrk): 0.21 s vs 0.37 s
        host = rows.numpy()
        moment[:d, :d] = torch.from_numpy(host.T @ host).double() / m
    else:
        moment[:d, :d] = (rows.T @ rows).double() / m
    moment[:d, d] = moment[d, :d] = rows.mean(0).double()
    moment[d, d] = 1.0
    eye = torch.eye(d + 1, dtype=torch.float64, device=X.device)
    return [torch.linalg.cholesky(moment / n_classes + damping * eye).float() for damping in dampings]


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
    # a small fit on one torch thread; a large one's products go through numpy's BLAS, with
    # its own threads, and the rest (L-BFGS's ~650 dot products of (D + 1, K) vectors, the
    # triangular solves, the softmax) on one torch thread, which is not woken for each
    if X.device.type == "cpu":
        with _one_cpu_thread():
            return _fit(X, codes, n_classes, C=C, max_iter=max_iter, tol=tol, random_state=random_state)
    return _fit(X, codes, n_classes, C=C, max_iter=max_iter, tol=tol, random_state=random_state)


def _host_blas(X: torch.Tensor, n_classes: int) -> bool:
    """Whether the solver's large products go through numpy's BLAS (OpenBLAS) instead of torch's (MKL).

    On the CPU, for fits above the single-thread size: at 50,000 x 2,048 x 10 on two idle cores
    of the build machine (AMD EPYC), OpenBLAS took 0.039 s for ``P^T X`` against torch's
    0.066 s, 0.048 s for ``X @ W`` against 0.049 s, and 0.21 s for the preconditioner's 8,192-row
    Gram against 0.37 s: 33 evaluations, about 1 s of a 5.5 s fit. Both see the same float32
    arrays (no copy: the numpy views share torch's memory); the sums differ only in rounding.

    Returns:
        True to use numpy's BLAS.
    """
    n, d = X.shape
    return X.device.type == "cpu" and n * d * n_classes >= _SINGLE_THREAD_WORK


def _fit(X: torch.Tensor, codes: torch.Tensor, n_classes: int, *, C: float, max_iter: int, tol: float,
         random_state: int) -> LogisticFit:
    n, d = X.shape
    host = X.contiguous().numpy() if _host_blas(X, n_classes) else None  # see _host_blas
    penalty = (2.0 if n_classes == 2 else 1.0) / (C * n)
    factor, stop_factor = _preconditioners(
        X, n_classes, (max(penalty, _DAMPING), max(penalty, _STOP_DAMPING)), random_state)
    targets = torch.nn.functional.one_hot(codes, n_classes).to(X.dtype)
    u = torch.zeros(d + 1, n_classes, device=X.device, requires_grad=True)  # preconditioned (W; b)
    optimizer = torch.optim.LBFGS(
        # one iteration per step (see _iterate); max_eval bounds the line search at its usual 25
        [u], lr=1, max_iter=1, max_eval=26, history_size=10, tolerance_grad=0.0, tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )
    evaluations = 0
    last: tuple[torch.Tensor, torch.Tensor, torch.Tensor, float] | None = None  # u, loss, u.grad, stop measure

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
            if host is not None:
                logits = torch.from_numpy(host @ W.contiguous().numpy()).add_(theta[-1])
            else:  # X @ (W^T)^T: the layout MKL runs fast for this 10-column product (X @ W with W
                # row-major took 0.073 s against 0.049 s at 50,000 x 2,048 x 10, two threads)
                logits = torch.addmm(theta[-1], X, W.T.contiguous().T)
            log_p = torch.log_softmax(logits, 1)
            loss = -torch.vdot(log_p.ravel(), targets.ravel()) / n + 0.5 * penalty * W.square().sum()
            residual = log_p.exp_().sub_(targets).div_(n)  # (softmax - one-hot) / n
            # (P^T X)^T, not X^T P: torch's CPU GEMM runs the transposed-left form of this
            # tall-skinny product about 10x slower (1.96 s against 0.21 s at 50,000 x 2,048 x 10)
            p_t_x = torch.from_numpy(residual.numpy().T @ host) if host is not None else residual.T @ X
            grad = torch.cat([p_t_x.T + penalty * W, residual.sum(0)[None]])
            u.grad = torch.linalg.solve_triangular(factor, grad, upper=False).contiguous()
            stop = float(torch.linalg.solve_triangular(stop_factor, grad, upper=False).abs().max())
            last = (u.detach().clone(), loss, u.grad.clone(), stop)
        return loss

    def converged() -> bool:
        return last is not None and last[3] <= tol

    _iterate(optimizer, closure, converged, max_iter)
    with torch.no_grad():
        final = float(closure())
        theta = parameters()
        return LogisticFit(theta[:-1].clone(), theta[-1].clone(), evaluations, final)


def _iterate(optimizer: torch.optim.LBFGS, closure: Callable[[], torch.Tensor], converged: Callable[[], bool],
             max_iter: int) -> None:
    """Run ``max_iter`` L-BFGS iterations at most, one per ``step``, the first of length 1.

    Stops when ``converged()`` or when an iteration moves the point or the loss by less than
    1e-10. At zero the preconditioned Hessian is the identity up to the class coupling, so
    the unit step along the gradient is Newton's; torch's L-BFGS would first try
    ``min(1, 1 / |g|_1)`` (1 / 221 on a 50,000 x 2,048 probe) and spend three line-search
    evaluations growing it: loss 1.10 after four evaluations against 0.45 after two. Its
    first step is ``min(1, 1 / |g|_1) * lr``, so that iteration runs with ``lr = max(1,
    |g|_1)``. Each ``step`` starts by evaluating where the last one stopped: the closure
    answers that from its cache.
    """
    loss = float(closure())
    (group,) = optimizer.param_groups
    (u,) = group["params"]
    state = optimizer.state[u]
    gradient_l1 = float(u.grad.abs().sum()) if u.grad is not None else 1.0  # the closure set u.grad
    group["lr"] = max(1.0, gradient_l1)
    for _ in range(max_iter):
        if converged():
            return
        optimizer.step(closure)
        group["lr"] = 1.0
        previous, loss = loss, float(closure())
        if abs(loss - previous) < 1e-10 or float(state["d"].abs().max()) * float(state["t"]) < 1e-10:
            return

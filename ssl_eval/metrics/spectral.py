"""Spectral metrics from one pass over X: the D x D Gram X^T X and the column sums.

The Gram (blocked, float64) and the column sums give both the uncentered spectrum and the
covariance, from one tridiagonal reduction (:func:`both_spectra`).

* ``rankme`` (Garrido et al. 2023, exactly as published): singular values s of the
  UNCENTERED X (the top min(N, D) of them), p_k = s_k / sum(s) + 1e-7,
  rankme = exp(-sum p_k log p_k).
* ``rankme_centered``: the same on the column-centered X.
* ``alpha_req`` (Agrawal et al. 2022): least-squares fit of log lambda_i = c - alpha log i
  over the covariance eigenvalues in decreasing order, keeping those above
  1e-10 * lambda_1 (numerical zeros of a rank-deficient matrix would dominate the fit).
  Needs at least 2 such eigenvalues, else NaN with flag ``"too_few_eigenvalues"``.
  The paper finds alpha close to 1 best; we report alpha itself, ``higher_is_better=False``.
* ``alpha_req_r2``: R^2 of that fit in log-log space (1.0 when the log-spectrum is flat).
* ``nesum``: sum_i lambda_i / lambda_1 over the covariance eigenvalues.
* ``stable_rank``: sum / max of the uncentered Gram eigenvalues = ||X||_F^2 / ||X||_2^2.

``convention`` (``"ssl-eval"``, ``"reptrix"``, ``"stable-pretraining"``) computes
``rankme`` / ``rankme_centered`` / ``alpha_req`` / ``alpha_req_r2`` the peer's way from the
same two spectra (see ``peers``): reptrix changes rankme_centered and the alpha-ReQ fit,
stable-pretraining changes rankme's eps.

A zero matrix (uncentered) or zero covariance (all rows equal) gives NaN for the metrics
that divide by its spectrum, with flag ``"collapsed"``.
"""

from __future__ import annotations

import numpy as np

from ssl_eval.metrics import peers

__all__ = ["RANKME_EPS", "alpha_req_fit", "both_spectra", "gram_and_sums", "rankme_from_singular_values",
           "spectral_metrics"]

RANKME_EPS = 1e-7
ALPHA_REQ_RELATIVE_FLOOR = 1e-10
_BLOCK_ROWS = 2048  # a (2048, D) float64 block: 32 MiB at D = 2048


def gram_and_sums(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(X^T X, X^T 1) accumulated over row blocks in float64.

    Args:
        X: (N, D) array (any float dtype, or a lazily read array that slices by rows).

    Returns:
        The (D, D) Gram matrix and the (D,) column sums, both float64.
    """
    d = X.shape[1]
    gram, sums = np.zeros((d, d)), np.zeros(d)
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        block = np.asarray(X[start:start + _BLOCK_ROWS], dtype=np.float64)
        gram += block.T @ block
        sums += block.sum(axis=0)
    return gram, sums


def both_spectra(gram: np.ndarray, sums: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of the uncentered Gram G and the centered scatter C from one tridiagonal reduction.

    C = G - n m m^T with m = sums / n; both spectra in decreasing order, clipped at 0. A
    Householder reflector P maps m to ||m|| e_1; ``dsytrd`` reduces P C P to a tridiagonal
    T = Q^T P C P Q with Q e_1 = e_1, so the same Q makes P G P = P C P + n ||m||^2 e_1 e_1^T
    tridiagonal too: T with n ||m||^2 added to its first diagonal entry.
    Both spectra then come from ``dsterf`` (O(D^2)); every step is orthogonal, so the
    eigenvalues carry the backward error of one ``eigvalsh`` (about eps ||G||) and the
    O(D^3) work is done once instead of twice. Equal, up to that rounding, to
    ``eigvalsh(G)`` and ``eigvalsh(C)``.

    Args:
        gram: (D, D) X^T X, float64.
        sums: (D,) column sums of X.
        n: the number of rows of X.

    Returns:
        (uncentered, centered) eigenvalues, each (D,), decreasing, >= 0.

    Raises:
        LinAlgError: LAPACK's reduction or its eigenvalue iteration failed.
    """
    from scipy.linalg import lapack

    mean = sums / n
    scatter = gram - n * np.outer(mean, mean)
    norm = float(np.linalg.norm(mean))
    if norm > 0.0:  # P = I - 2 v v^T with P m = -sign(m_0) ||m|| e_1; P C P as a rank-2 update
        v = mean / norm
        v[0] += 1.0 if v[0] >= 0.0 else -1.0
        v /= np.linalg.norm(v)
        cv = scatter @ v
        w = cv - float(v @ cv) * v
        scatter -= 2.0 * (np.outer(v, w) + np.outer(w, v))
    lwork, _ = lapack.dsytrd_lwork(scatter.shape[0], lower=1)
    _, diagonal, off, _, info = lapack.dsytrd(scatter, lower=1, lwork=int(lwork), overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dsytrd failed (info {info}) on the {scatter.shape[0]}-dimensional scatter")
    spectra = []
    for shift in (n * norm * norm, 0.0):
        first = diagonal.copy()
        first[0] += shift
        values, info = lapack.dsterf(first, off.copy()) if off.size else (first, 0)  # D = 1: T is its diagonal
        if info != 0:
            raise np.linalg.LinAlgError(f"dsterf failed to converge (info {info})")
        spectra.append(np.clip(np.sort(values)[::-1], 0.0, None))
    return spectra[0], spectra[1]


def rankme_from_singular_values(s: np.ndarray, eps: float = RANKME_EPS) -> float:
    """The exponential of the entropy of p = s / sum(s) + eps (Garrido et al. 2023).

    Args:
        s: singular values (any order).
        eps: added to each p_k (1e-7 in the paper).

    Returns:
        RankMe, or NaN when the singular values sum to 0.
    """
    total = float(np.sum(s))
    if not total > 0.0:
        return float("nan")
    p = s / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def alpha_req_fit(eigenvalues: np.ndarray) -> tuple[float, float]:
    """(alpha, R^2) of log lambda_i = c - alpha log i over the eigenvalues above 1e-10 * lambda_1.

    Args:
        eigenvalues: covariance eigenvalues (any order; sorted here).

    Returns:
        (alpha, R^2 of the log-log fit); both NaN when fewer than 2 values are usable.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1]
    if lam.size == 0 or not lam[0] > 0.0:
        return float("nan"), float("nan")
    lam = lam[lam > ALPHA_REQ_RELATIVE_FLOOR * lam[0]]
    if lam.size < 2:
        return float("nan"), float("nan")
    x = np.log(np.arange(1, lam.size + 1, dtype=np.float64))
    y = np.log(lam)
    xc, yc = x - x.mean(), y - y.mean()
    slope = float(xc @ yc / (xc @ xc))
    residual = yc - slope * xc
    ss_tot, ss_res = float(yc @ yc), float(residual @ residual)
    r2 = 1.0 if ss_tot <= 1e-24 else 1.0 - ss_res / ss_tot
    return -slope, float(r2)


def spectral_metrics(X: np.ndarray, *,
                     convention: str = "ssl-eval") -> tuple[dict[str, float], list[str]]:
    """All spectral metrics of the rows of X (finite, checked by the registry).

    Args:
        X: (N, D) float array of embeddings.
        convention: ``"ssl-eval"``, ``"reptrix"`` or ``"stable-pretraining"`` (see the module doc).

    Returns:
        (metric name -> value, flags): rankme, rankme_centered, stable_rank, nesum, alpha_req,
        alpha_req_r2; flags ``"collapsed"`` and ``"too_few_eigenvalues"`` explain NaNs.
    """
    nan = float("nan")
    n, d = X.shape
    flags: list[str] = []
    gram, sums = gram_and_sums(X)
    uncentered, centered = both_spectra(gram, sums, n)
    r = min(n, d)
    values = {
        "rankme": rankme_from_singular_values(np.sqrt(uncentered[:r])),
        "rankme_centered": rankme_from_singular_values(np.sqrt(centered[:r])),
        "stable_rank": nan, "nesum": nan, "alpha_req": nan, "alpha_req_r2": nan,
    }
    if convention == "stable-pretraining":
        values["rankme"] = peers.spt_rankme(np.sqrt(uncentered[:r]))
    if uncentered[0] > 0.0:
        values["stable_rank"] = float(uncentered.sum() / uncentered[0])
    # All rows equal: the centered scatter is zero up to rounding of the mean.
    if n < 2 or float(np.ptp(X, axis=0).max()) == 0.0:
        flags.append("collapsed")
        values["rankme_centered"] = nan
        return values, flags
    cov = centered / (n - 1)
    if cov[0] > 0.0:
        values["nesum"] = float(cov.sum() / cov[0])
    values["alpha_req"], values["alpha_req_r2"] = alpha_req_fit(cov[:r])
    if convention == "reptrix":
        values["rankme_centered"] = peers.reptrix_rankme(cov, n)
        values["alpha_req"], values["alpha_req_r2"] = peers.reptrix_alpha_req(cov, n)
    if np.isnan(values["alpha_req"]):
        flags.append("too_few_eigenvalues")
    if np.isnan(values["rankme"]):
        flags.append("collapsed")
    return values, flags

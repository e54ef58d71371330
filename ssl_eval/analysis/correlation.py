"""How one label-free metric tracks the probe over a set of checkpoints.

Spearman, Kendall (tau-b) and Pearson with p-values (:func:`correlate`), their bootstrap percentile
intervals (:func:`bootstrap_ci`), and the checkpoint the metric would pick with its regret
(:func:`selection_regret`). Pure functions of two lists of numbers; NaN pairs are dropped.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ssl_eval.common.threads import quiet_known_warnings

__all__ = ["STATS", "N_BOOTSTRAP", "CONFIDENCE", "KENDALL_BOOTSTRAP_MAX_N", "WITHIN_RUN_MIN_CHECKPOINTS", "correlate",
           "bootstrap_ci", "selection_regret", "within_run_spearman"]

STATS = ("spearman", "kendall", "pearson")
N_BOOTSTRAP = 1000
CONFIDENCE = 0.95
#: Kendall's bootstrap costs n_boot * n^2 sign comparisons; above this many checkpoints its
#: interval is left NaN (Spearman's and Pearson's are still bootstrapped).
KENDALL_BOOTSTRAP_MAX_N = 300
#: A run enters the within-run correlation with at least this many checkpoints with a probe.
WITHIN_RUN_MIN_CHECKPOINTS = 5


def _finite_pairs(x: list[float], y: list[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def correlate(x: list[float], y: list[float]) -> dict[str, float]:
    """Spearman, Kendall (tau-b) and Pearson with p-values, over the pairs where both are finite.

    Args:
        x: metric values, one per checkpoint.
        y: probe accuracies of the same checkpoints.

    Returns:
        ``n`` and, per statistic, ``<stat>`` and ``<stat>_p``; NaN where undefined (n < 3 or constant).
    """
    a, b = _finite_pairs(x, y)
    out: dict[str, float] = {"n": float(len(a))}
    tests = {"spearman": stats.spearmanr, "kendall": stats.kendalltau, "pearson": stats.pearsonr}
    for name, test in tests.items():
        if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
            out[name], out[f"{name}_p"] = math.nan, math.nan
            continue
        quiet_known_warnings()  # scipy's constant-input warnings; numpy's error state is per thread
        with np.errstate(all="ignore"):
            result = test(a, b)
        out[name], out[f"{name}_p"] = float(result.statistic), float(result.pvalue)
    return out


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``a`` with the same row of ``b``; NaN where a row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / denom
    return np.where(denom > 0, np.clip(r, -1.0, 1.0), np.nan)


def _kendall_rows(a: np.ndarray, b: np.ndarray, *, block_elements: int = 4_000_000) -> np.ndarray:
    """Kendall tau-b of each row pair (ties handled as scipy does), computed in blocks of rows.

    No more than ``block_elements`` pair signs are held at once.

    Returns:
        The (n_rows,) tau-b values, NaN where a row pair has no defined tau.
    """
    n_rows, n = a.shape
    out = np.empty(n_rows)
    step = max(1, block_elements // max(1, n * n))
    for start in range(0, n_rows, step):
        sa = np.sign(a[start:start + step, :, None] - a[start:start + step, None, :])
        sb = np.sign(b[start:start + step, :, None] - b[start:start + step, None, :])
        denom = np.sqrt(np.abs(sa).sum(axis=(1, 2)) * np.abs(sb).sum(axis=(1, 2)))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + step] = np.where(denom > 0, (sa * sb).sum(axis=(1, 2)) / denom, np.nan)
    return out


def bootstrap_ci(x: list[float], y: list[float], *, n_boot: int = N_BOOTSTRAP, confidence: float = CONFIDENCE,
                 random_state: int | np.random.Generator | None = 0) -> dict[str, float]:
    """Percentile bootstrap intervals of Spearman, Kendall and Pearson.

    The finite (x, y) pairs (checkpoints) are resampled with replacement ``n_boot`` times;
    each draw's three statistics are computed (ties from repeated checkpoints handled as
    scipy does: average ranks, tau-b); draws where a statistic is undefined (a constant
    resample) are dropped; the interval is the ``(1 - confidence) / 2`` and ``(1 + confidence)
    / 2`` percentiles of the rest. NaN when n < 3 or fewer than half the draws are defined,
    and Kendall's when n > ``KENDALL_BOOTSTRAP_MAX_N`` (its cost grows with n^2).

    Args:
        x: metric values, one per checkpoint.
        y: probe accuracies of the same checkpoints.
        n_boot: number of resamples, >= 1.
        confidence: the interval's coverage, in (0, 1).
        random_state: seed or Generator of the resamples.

    Returns:
        ``<stat>_ci_low`` and ``<stat>_ci_high`` for each statistic.

    Raises:
        ValueError: ``n_boot`` < 1 or ``confidence`` outside (0, 1).
    """
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}; 1000 draws is the usual choice.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}; use 0.95 for a 95% interval.")
    a, b = _finite_pairs(x, y)
    out = {f"{s}_ci_{side}": math.nan for s in STATS for side in ("low", "high")}
    if len(a) < 3:
        return out
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    index = rng.integers(0, len(a), size=(n_boot, len(a)))
    xa, yb = a[index], b[index]
    draws = {
        "pearson": _pearson_rows(xa, yb),
        "spearman": _pearson_rows(stats.rankdata(xa, axis=1), stats.rankdata(yb, axis=1)),
    }
    if len(a) <= KENDALL_BOOTSTRAP_MAX_N:
        draws["kendall"] = _kendall_rows(xa, yb)
    q = 100 * np.array([(1 - confidence) / 2, (1 + confidence) / 2])
    for name, values in draws.items():
        values = values[np.isfinite(values)]
        if len(values) >= n_boot / 2:
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = (float(v) for v in np.percentile(values, q))
    return out


def selection_regret(metric: list[float], probe: list[float], *, higher_is_better: bool) -> tuple[int | None, float]:
    """The checkpoint a metric would pick, and what that costs in probe accuracy.

    Args:
        metric: metric values, one per checkpoint.
        probe: probe accuracies of the same checkpoints.
        higher_is_better: the metric's good direction.

    Returns:
        (index of the pick, best probe accuracy minus the pick's), over checkpoints where
        both are finite; (None, NaN) when there are none.
    """
    m, p = np.asarray(metric, dtype=float), np.asarray(probe, dtype=float)
    valid = np.isfinite(m) & np.isfinite(p)
    if not valid.any():
        return None, math.nan
    scores = np.where(valid, m if higher_is_better else -m, -np.inf)
    pick = int(np.argmax(scores))
    return pick, float(np.nanmax(np.where(valid, p, np.nan)) - p[pick])


def within_run_spearman(runs: list[tuple[list[float], list[float]]], *, n_boot: int = N_BOOTSTRAP,
                        confidence: float = CONFIDENCE, random_state: int = 0) -> dict[str, float]:
    """Spearman's rho inside each run, averaged over the runs, with a block-bootstrap interval.

    Early stopping and keeping compare checkpoints of one run, so what matters is whether the
    metric orders a run's checkpoints as the probe does. Pooling checkpoints of several runs
    mixes that with differences between runs (a learning rate that shifts every value), and
    resampling checkpoints as if independent ignores that neighbouring epochs are alike: the
    interval here resamples whole runs with replacement (a block bootstrap over runs).

    Args:
        runs: per run, (metric values, probe accuracies) of its checkpoints; runs with fewer than
            :data:`WITHIN_RUN_MIN_CHECKPOINTS` finite pairs, or a constant side, are left out.
        n_boot: number of resamples of the runs.
        confidence: the interval's coverage, in (0, 1).
        random_state: seed of the resamples.

    Returns:
        ``rho`` (mean of the runs' rho), ``ci_low``, ``ci_high`` (NaN with fewer than 2 runs)
        and ``n_runs``.
    """
    rhos = []
    for x, y in runs:
        a, b = _finite_pairs(x, y)
        if len(a) >= WITHIN_RUN_MIN_CHECKPOINTS and np.ptp(a) > 0 and np.ptp(b) > 0:
            rhos.append(float(stats.spearmanr(a, b).statistic))
    out = {"rho": float(np.mean(rhos)) if rhos else math.nan, "ci_low": math.nan, "ci_high": math.nan,
           "n_runs": float(len(rhos))}
    if len(rhos) >= 2:
        rng = np.random.default_rng(random_state)
        means = np.asarray(rhos)[rng.integers(0, len(rhos), size=(n_boot, len(rhos)))].mean(axis=1)
        q = 100 * np.array([(1 - confidence) / 2, (1 + confidence) / 2])
        out["ci_low"], out["ci_high"] = (float(v) for v in np.percentile(means, q))
    return out

"""The stop and keep of one run: where a label-free early stop fires and which checkpoint it keeps.

* ``stop_rule = "best"`` (the default, :func:`best_stop`): the run's signals as one smoothed
  series (:func:`aggregate`); the stop fires when its last new best is ``stop_patience``
  checkpoints old (never before ``min_epoch``) and keeps the best checkpoint of that series.
* ``stop_rule = "trend"`` (the first version): ``patience`` consecutive progress tests that are
  not *improving* (:func:`ssl_eval.verdict.progress.stop_index`), keeping the rank-aggregate pick.

Both are causal: at checkpoint t they read checkpoints 0..t only. docs/verdicts.md gives the
validation that chose the default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ssl_eval.config import VerdictConfig
from ssl_eval.verdict.progress import Progress, Row, keep_index, stop_index, values_of

__all__ = ["aggregate", "best_stop", "decide"]


def aggregate(rows: Sequence[Row], signals: Mapping[str, bool], width: int = 1) -> np.ndarray:
    """The signals of one run's rows as one series, smoothed: a pure function of ``rows``.

    Each signal is turned its good way up and scaled to [0, 1] by the range it covered over
    ``rows`` (a constant signal contributes nothing), the signals are averaged where finite,
    and the series is smoothed by a centred mean of ``width`` checkpoints, truncated at both
    ends (the last point averages only itself and the checkpoints before it). Given the rows up
    to a checkpoint, it reads nothing later: the rules built on it are causal.

    Args:
        rows: one run's rows, sorted by epoch.
        signals: signal name -> higher_is_better.
        width: checkpoints in the centred mean (1: no smoothing).

    Returns:
        One value per row; NaN where no signal is finite.
    """
    return _combine(_oriented(rows, signals), width)


def _oriented(rows: Sequence[Row], signals: Mapping[str, bool]) -> list[np.ndarray]:
    """Each signal's values over ``rows``, turned its good way up (read once per run)."""
    return [np.array(values_of(rows, name)) * (1.0 if hib else -1.0) for name, hib in signals.items()]


def _combine(oriented: Sequence[np.ndarray], width: int) -> np.ndarray:
    """:func:`aggregate` of signal series already read and oriented (all of one length)."""
    n = len(oriented[0]) if oriented else 0
    total, count = np.zeros(n), np.zeros(n)
    for v in oriented:
        finite = np.isfinite(v)
        if finite.sum() < 2 or np.ptp(v[finite]) == 0:
            continue
        low, span = np.min(v[finite]), np.ptp(v[finite])
        total[finite] += (v[finite] - low) / span
        count[finite] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    half = width // 2
    out = np.full(n, np.nan)
    for i in range(n):
        part = raw[max(0, i - half):i + half + 1]
        if np.isfinite(part).any():
            out[i] = float(np.nanmean(part))
    return out


def _best(series: np.ndarray, candidates: Sequence[int]) -> int | None:
    finite = [i for i in candidates if math.isfinite(series[i])]
    return max(finite, key=lambda i: (series[i], i)) if finite else None


def _last_new_best(series: np.ndarray, candidates: Sequence[int], min_change: float) -> int | None:
    """Index of the last checkpoint that beat every earlier one by ``min_change`` of the series' range.

    Smaller gains are noise, not a new best.

    Returns:
        The index, or None when no candidate has a finite value.
    """
    finite = [i for i in candidates if math.isfinite(series[i])]
    if not finite:
        return None
    margin = min_change * float(np.ptp(series[finite]))
    best = finite[0]
    for i in finite[1:]:
        if series[i] > series[best] + margin:
            best = i
    return best


def best_stop(rows: Sequence[Row], signals: Mapping[str, bool], config: VerdictConfig,
              collapse: Mapping[str, str]) -> tuple[int | None, int | None]:
    """The "best" stop and keep of one run (``stop_rule = "best"``), causal at every checkpoint.

    At checkpoint t the run's :func:`aggregate` over checkpoints 0..t (``config.smooth``) is
    computed afresh; the stop fires when its last new best (a gain of at least
    ``config.min_change`` of the range the aggregate covered) is ``config.stop_patience`` or
    more checkpoints old and the epoch is at least ``config.min_epoch``, or at once on a collapse.
    What is kept is the best checkpoint of that aggregate (collapsed ones excluded, ties to the
    later epoch): the untrained checkpoint only when no later one scores higher.

    Args:
        rows: one run's rows, sorted by epoch.
        signals: signal name -> higher_is_better.
        config: ``smooth``, ``stop_patience``, ``min_epoch``, ``min_change``.
        collapse: checkpoint id -> reason, for checkpoints with a collapse alert.

    Returns:
        (index of the stop or None when it never fires, index of the kept checkpoint or None).
    """
    oriented = _oriented(rows, signals)  # the values do not change with t; their scaling does
    for t in range(len(rows)):
        series = _combine([v[:t + 1] for v in oriented], config.smooth)
        candidates = [i for i in range(t + 1) if rows[i]["id"] not in collapse]
        if rows[t]["id"] in collapse:
            return t, _best(series, candidates)
        last_best = _last_new_best(series, candidates, config.min_change)
        if last_best is not None and t - last_best >= config.stop_patience and rows[t]["epoch"] >= config.min_epoch:
            return t, _best(series, candidates)
    series = _combine(oriented, config.smooth)
    return None, _best(series, [i for i in range(len(rows)) if rows[i]["id"] not in collapse])


def decide(rows: Sequence[Row], states: Sequence[Progress], signals: Mapping[str, bool], config: VerdictConfig,
           collapse: Mapping[str, str]) -> tuple[int | None, int | None]:
    """Where one run stops and which of its checkpoints is kept, by ``config.stop_rule``.

    Args:
        rows: one run's rows, sorted by epoch.
        states: its progress history (:func:`history`), read by the "trend" rule.
        signals: signal name -> higher_is_better.
        config: the verdict's rules.
        collapse: checkpoint id -> reason, for checkpoints with a collapse alert.

    Returns:
        (stop index or None, kept index or None); the kept checkpoint is at or before the stop.
    """
    if config.stop_rule == "best":
        return best_stop(rows, signals, config, collapse)
    stop = stop_index(states, config)
    until = len(rows) - 1 if stop is None else stop
    return stop, keep_index(rows[:until + 1], signals, collapse)

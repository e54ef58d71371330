"""Progress, stop, keep and the retrospective, from a family's rows and its chosen signals.

*Signals* are label-free metric names with their registry direction (higher is better or
not). Every rule reads the rows of :func:`ssl_eval.analysis.family_rows`.

* **progress** of a run at checkpoint ``t``: each signal's :func:`~ssl_eval.verdict.trend.trend`
  over the ``window`` checkpoints ending at ``t``; the run is *improving* when at least half
  the signals improve and none degrades, *degrading* when at least half degrade and none
  improves, *plateaued* otherwise; *collapsed* when checkpoint ``t`` has a collapse alert;
  *insufficient* before ``window`` checkpoints (or with no finite signal).
* **stop** of the "trend" rule: the first checkpoint at which ``patience`` consecutive progress
  tests were not *improving* (a collapse stops at once); None when it never fires. The default
  "best" rule and the choice between them are :mod:`ssl_eval.verdict.stopping`.
* **keep**: the checkpoint with the best rank aggregate of the signals: each signal's values
  ranked (average ranks, in its good direction) and scaled to [0, 1] among the candidates,
  then averaged; ties go to the later epoch. Collapsed checkpoints are not candidates.
* **retrospective** (rows with a probe): per run, the checkpoint kept when the stop fired
  (:func:`ssl_eval.verdict.stopping.decide`), probe points lost against the run's best
  checkpoint, the fraction of checkpoints not trained, and how often the progress state
  agreed with the probe's own trend (the same test on the probe accuracy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from ssl_eval.config import VerdictConfig
from ssl_eval.verdict.trend import (
    COLLAPSED,
    DEGRADING,
    IMPROVING,
    INSUFFICIENT,
    PLATEAUED,
    PROBE,
    Trend,
    describe,
    trend,
)

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Progress:
    """A run's state at one checkpoint (``epoch``), with the trends behind it and in words."""

    run: str
    epoch: int
    state: str
    trends: tuple[Trend, ...]
    text: str

    def as_dict(self) -> dict[str, Any]:
        """The progress as a JSON-ready dict.

        Returns:
            ``state``, ``epoch``, ``text`` and ``trends`` (each :meth:`Trend.as_dict`).
        """
        return {"state": self.state, "epoch": self.epoch, "text": self.text, "trends": [t.as_dict() for t in self.trends]}


def by_run(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """A family's rows grouped by training run.

    Args:
        rows: the family's rows (:func:`ssl_eval.analysis.family_rows`).

    Returns:
        run -> its rows sorted by epoch, runs in name order.
    """
    runs: dict[str, list[Row]] = {}
    for r in rows:
        runs.setdefault(str(r["run"]), []).append(r)
    return {run: sorted(mine, key=lambda r: r["epoch"]) for run, mine in sorted(runs.items())}


def values_of(rows: Sequence[Row], name: str) -> list[float]:
    """One signal's values over ``rows`` (the probe's for ``linear_acc``); NaN where absent.

    Args:
        rows: checkpoint rows.
        name: a metric name, or ``linear_acc`` for the probe.

    Returns:
        One float per row.
    """
    source = "probe" if name == PROBE else "metrics"
    out = []
    for r in rows:
        value = r.get(source, {}).get(name)
        out.append(float(value) if isinstance(value, (int, float)) else math.nan)
    return out


def _trend_at(rows: Sequence[Row], end: int, name: str, higher_is_better: bool, config: VerdictConfig) -> Trend | None:
    window = rows[end - config.window + 1:end + 1]
    return trend(name, [r["epoch"] for r in window], values_of(window, name), history=values_of(rows[:end + 1], name),
                 higher_is_better=higher_is_better, alpha=config.alpha, min_change=config.min_change)


def _vote(trends: Sequence[Trend]) -> str:
    up = sum(t.state == IMPROVING for t in trends)
    down = sum(t.state == DEGRADING for t in trends)
    if up and not down and 2 * up >= len(trends):
        return IMPROVING
    if down and not up and 2 * down >= len(trends):
        return DEGRADING
    return PLATEAUED


def progress_at(run: str, rows: Sequence[Row], end: int, signals: Mapping[str, bool], config: VerdictConfig,
                collapse: Mapping[str, str]) -> Progress:
    """The progress of ``run`` at checkpoint index ``end``.

    Args:
        run: the run's name, used in the text.
        rows: the run's rows (:func:`ssl_eval.analysis.family_rows`), sorted by epoch.
        end: index into ``rows`` of the checkpoint to judge at.
        signals: signal name -> higher_is_better (its registry direction).
        config: the verdict's rules (``window``, ``patience``, thresholds).
        collapse: checkpoint id -> reason, for checkpoints with a collapse alert.

    Returns:
        Its state (collapsed, insufficient, or the vote of the signals' trends) with the text.
    """
    epoch = int(rows[end]["epoch"])
    if rows[end]["id"] in collapse:
        return Progress(run, epoch, COLLAPSED, (), f"{run}: collapsed at epoch {epoch}: {collapse[rows[end]['id']]}")
    if end + 1 < config.window:
        return Progress(run, epoch, INSUFFICIENT, (), f"{run}: {end + 1} checkpoint{'s' if end else ''} so far; "
                        f"the trend test needs {config.window}")
    trends = tuple(t for name, hib in signals.items() if (t := _trend_at(rows, end, name, hib, config)) is not None)
    if not trends:
        return Progress(run, epoch, INSUFFICIENT, (), f"{run}: no finite value of {', '.join(signals)} "
                        f"in the last {config.window} checkpoints")
    state = _vote(trends)
    return Progress(run, epoch, state, trends, f"{run}: " + "; ".join(describe(t) for t in trends))


def history(run: str, rows: Sequence[Row], signals: Mapping[str, bool], config: VerdictConfig,
            collapse: Mapping[str, str]) -> list[Progress]:
    """The run's progress at every checkpoint, as if training had ended there.

    Args:
        run: the run's name.
        rows: the run's rows (:func:`ssl_eval.analysis.family_rows`), sorted by epoch.
        signals: signal name -> higher_is_better (its registry direction).
        config: the verdict's rules (``window``, ``patience``, thresholds).
        collapse: checkpoint id -> reason, for checkpoints with a collapse alert.

    Returns:
        One :class:`Progress` per row, in epoch order.
    """
    return [progress_at(run, rows, end, signals, config, collapse) for end in range(len(rows))]


def stop_index(states: Sequence[Progress], config: VerdictConfig) -> int | None:
    """Index of the checkpoint at which the label-free stop fires, or None.

    Args:
        states: a run's progress history (:func:`history`).
        config: the verdict's rules (``window``, ``patience``, thresholds).

    Returns:
        The first index that is collapsed or ends ``patience`` consecutive non-improving states;
        None when the stop never fires.
    """
    quiet = 0
    for index, p in enumerate(states):
        if p.state == COLLAPSED:
            return index
        quiet = quiet + 1 if p.state in (PLATEAUED, DEGRADING) else 0
        if quiet >= config.patience:
            return index
    return None


def keep_index(rows: Sequence[Row], signals: Mapping[str, bool], collapse: Mapping[str, str]) -> int | None:
    """Index (into ``rows``) of the rank-aggregate pick, or None when no candidate has a value.

    Args:
        rows: the candidate rows (any runs of one family).
        signals: signal name -> higher_is_better (its registry direction).
        collapse: checkpoint id -> reason, for checkpoints with a collapse alert.

    Returns:
        The index of the best average scaled rank (ties to the later epoch), or None.
    """
    candidates = [i for i, r in enumerate(rows) if r["id"] not in collapse]
    if not candidates:
        return None
    scores = np.zeros(len(candidates))
    counts = np.zeros(len(candidates))
    for name, hib in signals.items():
        values = np.array(values_of([rows[i] for i in candidates], name))
        finite = np.isfinite(values)
        if finite.sum() == 0:
            continue
        ranks = stats.rankdata(values[finite] if hib else -values[finite])
        scores[finite] += (ranks - 1) / max(1, finite.sum() - 1)
        counts[finite] += 1
    if not counts.any():
        return None
    mean = np.where(counts > 0, scores / np.maximum(counts, 1), -np.inf)
    best = max(range(len(candidates)), key=lambda j: (mean[j], rows[candidates[j]]["epoch"]))
    return candidates[best]


def probe_of(row: Row) -> float:
    """The linear probe accuracy of a row.

    Args:
        row: one checkpoint row.

    Returns:
        ``row["probe"]["linear_acc"]`` as a float, NaN when absent.
    """
    value = row.get("probe", {}).get(PROBE)
    return float(value) if isinstance(value, (int, float)) else math.nan


def retrospective(rows: Sequence[Row], states: Sequence[Progress], decision: tuple[int | None, int | None],
                  config: VerdictConfig) -> dict[str, Any] | None:
    """What the stop and progress rules would have cost, and how often they agreed with the probe.

    Args:
        rows: the run's rows (:func:`ssl_eval.analysis.family_rows`), sorted by epoch.
        states: its progress history (:func:`history`).
        decision: (stop index, kept index) of :func:`decide`.
        config: the verdict's rules (``window``, ``patience``, thresholds).

    Returns:
        ``stop_epoch``, ``best_probe_epoch``, ``kept``, ``points_lost``, ``fraction_saved``,
        ``windows``, ``agreement`` and more; None when the run has no probe accuracy.
    """
    probes = [probe_of(r) for r in rows]
    if not any(math.isfinite(p) for p in probes):
        return None
    best = int(np.nanargmax(probes))
    stop, kept = decision
    until = len(rows) - 1 if stop is None else stop
    kept_probe = probes[kept] if kept is not None else math.nan
    best_before = float(np.nanmax(probes[:until + 1])) if any(math.isfinite(p) for p in probes[:until + 1]) else math.nan
    windows = []
    for end, p in enumerate(states):
        if p.state == INSUFFICIENT:
            continue
        truth = _trend_at(rows, end, PROBE, True, config) if end + 1 >= config.window else None
        if truth is None:
            continue
        said = DEGRADING if p.state == COLLAPSED else p.state
        windows.append({"epoch": p.epoch, "state": p.state, "probe_state": truth.state, "agree": said == truth.state})
    agree = sum(1 for w in windows if w["agree"])
    return {
        "stop_epoch": None if stop is None else int(rows[stop]["epoch"]),
        "best_probe_epoch": int(rows[best]["epoch"]),
        "best_probe": probes[best],
        "kept": rows[kept]["id"] if kept is not None else None,
        "kept_probe": kept_probe,
        "points_lost": 100 * (probes[best] - kept_probe) if math.isfinite(kept_probe) else math.nan,
        "points_lost_by_stopping": 100 * (probes[best] - best_before),
        "checkpoints": len(rows),
        "fraction_saved": (len(rows) - 1 - until) / len(rows),
        "windows": windows,
        "agreement": agree / len(windows) if windows else math.nan,
    }

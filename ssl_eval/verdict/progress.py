"""Progress, stop, keep and the retrospective, from a family's rows and its chosen signals.

*Signals* are label-free metric names with their registry direction (higher is better or
not). Every rule reads the rows of :func:`ssl_eval.analysis.family_rows`.

* **progress** of a run at checkpoint ``t``: each signal's :func:`~ssl_eval.verdict.trend.trend`
  over the ``window`` checkpoints ending at ``t``; the run is *improving* when at least half
  the signals improve and none degrades, *degrading* when at least half degrade and none
  improves, *plateaued* otherwise; *collapsed* when checkpoint ``t`` has a collapse alert;
  *insufficient* before ``window`` checkpoints (or with no finite signal).
* **stop**: the first checkpoint at which ``patience`` consecutive progress tests were not
  *improving* (a collapse stops at once); None when it never fires.
* **keep**: the checkpoint with the best rank aggregate of the signals: each signal's values
  ranked (average ranks, in its good direction) and scaled to [0, 1] among the candidates,
  then averaged; ties go to the later epoch. Collapsed checkpoints are not candidates.
* **retrospective** (rows with a probe): per run, the checkpoint kept when the stop fired
  (keep among the checkpoints up to the stop), probe points lost against the run's best
  checkpoint, the fraction of checkpoints not trained, and how often the progress state
  agreed with the probe's own trend (the same test on the probe accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from ssl_eval.config import VerdictConfig
from ssl_eval.verdict.trend import (
    COLLAPSED, DEGRADING, IMPROVING, INSUFFICIENT, PLATEAUED, PROBE, Trend, describe, trend,
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


def _values(rows: Sequence[Row], name: str) -> list[float]:
    source = "probe" if name == PROBE else "metrics"
    out = []
    for r in rows:
        value = r.get(source, {}).get(name)
        out.append(float(value) if isinstance(value, (int, float)) else math.nan)
    return out


def _trend_at(rows: Sequence[Row], end: int, name: str, higher_is_better: bool, config: VerdictConfig) -> Trend | None:
    window = rows[end - config.window + 1:end + 1]
    return trend(name, [r["epoch"] for r in window], _values(window, name), history=_values(rows[:end + 1], name),
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
        values = np.array(_values([rows[i] for i in candidates], name))
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
    total, count = np.zeros(len(rows)), np.zeros(len(rows))
    for name, hib in signals.items():
        v = np.array(_values(rows, name)) * (1.0 if hib else -1.0)
        finite = np.isfinite(v)
        if finite.sum() < 2 or np.ptp(v[finite]) == 0:
            continue
        low, span = np.min(v[finite]), np.ptp(v[finite])
        total[finite] += (v[finite] - low) / span
        count[finite] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    half = width // 2
    out = np.full(len(rows), np.nan)
    for i in range(len(rows)):
        part = raw[max(0, i - half):i + half + 1]
        if np.isfinite(part).any():
            out[i] = float(np.nanmean(part))
    return out


def _best(series: np.ndarray, candidates: Sequence[int]) -> int | None:
    finite = [i for i in candidates if math.isfinite(series[i])]
    return max(finite, key=lambda i: (series[i], i)) if finite else None


def _last_new_best(series: np.ndarray, candidates: Sequence[int], min_change: float) -> int | None:
    """Index of the last checkpoint that beat every earlier one by ``min_change`` of the range
    the series covered: smaller gains are noise, not a new best."""
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
    for t in range(len(rows)):
        series = aggregate(rows[:t + 1], signals, config.smooth)
        candidates = [i for i in range(t + 1) if rows[i]["id"] not in collapse]
        if rows[t]["id"] in collapse:
            return t, _best(series, candidates)
        last_best = _last_new_best(series, candidates, config.min_change)
        if last_best is not None and t - last_best >= config.stop_patience and rows[t]["epoch"] >= config.min_epoch:
            return t, _best(series, candidates)
    series = aggregate(rows, signals, config.smooth)
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

"""The validation protocol of benchmarks/verdict.py: runs, a denoised probe, rules, scores.

A *rule* sees one run causally (at checkpoint t only checkpoints 0..t) and returns where it
stops (an index, or None: it never stops) and which checkpoint it keeps (an index at or before
the stop). Everything a rule may be tuned on (trust, thresholds, a fixed epoch) is chosen on
other runs: the caller passes a *tuning set* that never holds the run being scored.

Scores are read against a denoised probe, not the raw readings: the maximum of noisy readings
is biased upwards by about one standard error, which would charge every rule for noise. The
denoised probe of a run is scipy's penalised smoothing spline (``make_smoothing_spline``, its
penalty chosen by generalised cross-validation) of the probe accuracy against the epoch.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import make_smoothing_spline

ID_COLUMNS = {"family", "run", "epoch", "checkpoint", "method", "arch", "flags", "train_loss", "lr"}
TREND_WINDOW, TREND_POINTS = 5, 0.5
"""The probe-trend label: the denoised probe's change over the last TREND_WINDOW checkpoints,
improving above +TREND_POINTS points, degrading below -TREND_POINTS, plateaued between.
Fixed here, independent of every detector setting."""
DECLINE_POINTS = 1.0
"""A run *declines* when its denoised probe falls DECLINE_POINTS below its best so far and
stays below until the end."""


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


@dataclass
class Run:
    """One training run: its tool rows (probe included) and what the protocol derives from them."""

    dataset: str
    family: str
    method: str
    name: str
    rows: list[dict[str, Any]]
    train_loss: np.ndarray
    epochs: np.ndarray = field(init=False)
    probe: np.ndarray = field(init=False)
    smooth: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.epochs = np.array([r["epoch"] for r in self.rows], dtype=float)
        self.probe = np.array([r["probe"].get("linear_acc", math.nan) for r in self.rows], dtype=float)
        self.smooth = denoise(self.epochs, self.probe)

    @property
    def key(self) -> str:
        """The run's key: ``dataset/family/run``."""
        return f"{self.dataset}/{self.family}/{self.name}"

    @property
    def lr(self) -> str:
        """The learning-rate group of the run's name (``lr10-run-0`` -> ``lr10``), else ``-``."""
        return self.name.split("-run-")[0] if "-run-" in self.name else "-"

    def hidden(self) -> list[dict[str, Any]]:
        """Its rows with the probe removed: what a rule without labels sees."""
        return [{**r, "probe": {}} for r in self.rows]

    def declines(self) -> int | None:
        """Index where the denoised probe has fallen DECLINE_POINTS below its best so far for good (it stays below to the end), or None."""
        best = np.maximum.accumulate(self.smooth)
        below = 100 * (best - self.smooth) >= DECLINE_POINTS
        for i in range(len(below)):
            if below[i:].all():
                return i
        return None


def denoise(epochs: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """The probe's smoothing-spline fit (GCV penalty); the raw values where too few are finite."""
    ok = np.isfinite(probe)
    if ok.sum() < 5:
        return probe.copy()
    spline = make_smoothing_spline(epochs[ok], probe[ok])
    return np.asarray(spline(epochs), dtype=float)


def probe_standard_error(runs: Sequence[Run], n_test: int | None) -> tuple[float, float]:
    """The probe's noise: the binomial standard error and the readings' residual SD, in points.

    The binomial standard error is at the median accuracy for ``n_test`` images; the residual SD is
    that of the readings around the denoised probe.

    Returns:
        ``(binomial standard error, residual SD)``; the first is NaN without ``n_test``.
    """
    acc = float(np.nanmedian(np.concatenate([r.probe for r in runs])))
    binomial = 100 * math.sqrt(acc * (1 - acc) / n_test) if n_test else math.nan
    residual = np.concatenate([r.probe - r.smooth for r in runs])
    return binomial, 100 * float(np.nanstd(residual))


def load_runs(sources: Sequence[str]) -> list[Run]:
    """Runs from ``NAME=CSV`` sources.

    Each CSV is ``ssl-eval report --format csv``, optionally with ``train_loss`` and ``lr`` columns
    from benchmarks/trajectory_csv.py.

    Returns:
        One :class:`Run` per (family, run) of every source.

    Raises:
        SystemExit: a source is not ``NAME=PATH``.
    """
    runs: list[Run] = []
    for source in sources:
        name, sep, path = source.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=PATH to a report CSV, got {source!r}")
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        with Path(path).open(newline="") as f:
            for rec in csv.DictReader(f):
                metrics = {k: _float(v) for k, v in rec.items()
                           if k not in ID_COLUMNS and not k.startswith("probe") and k != "ami_ground_truth"}
                probe = _float(rec.get("probe_linear_acc"))
                checkpoint = rec.get("checkpoint") or f"epoch={int(rec['epoch']):02d}"
                grouped.setdefault((rec["family"], rec["run"]), []).append({
                    "id": f"{rec['family']}/{rec['run']}/{checkpoint.split('/')[-1]}", "family": rec["family"],
                    "run": rec["run"], "epoch": int(rec["epoch"]), "method": rec.get("method") or rec["family"],
                    "metrics": metrics, "probe": {"linear_acc": probe} if math.isfinite(probe) else {},
                    "flags": [x for x in (rec.get("flags") or "").split(";") if x],
                    "train_loss": _float(rec.get("train_loss"))})
        for (family, run), rows in sorted(grouped.items()):
            rows.sort(key=lambda r: r["epoch"])
            runs.append(Run(name, family, rows[0]["method"], run, rows, np.array([r["train_loss"] for r in rows])))
    return runs


# ---------------------------------------------------------------- scoring

@dataclass(frozen=True)
class Outcome:
    """What a rule did on one run: where it stopped (None: never) and what it kept."""

    stop: int | None
    keep: int


def points_lost(run: Run, outcome: Outcome) -> float:
    """Denoised best of the run minus the denoised probe of the kept checkpoint, in points."""
    return 100 * float(np.nanmax(run.smooth) - run.smooth[outcome.keep])


def saved(run: Run, outcome: Outcome) -> float:
    """Share of the run's checkpoints after the stop (training not done)."""
    n = len(run.rows)
    return 0.0 if outcome.stop is None else (n - 1 - outcome.stop) / n


def probe_trend(run: Run) -> list[str | None]:
    """The probe-trend label at every checkpoint (None before TREND_WINDOW checkpoints)."""
    out: list[str | None] = []
    for t in range(len(run.rows)):
        if t + 1 < TREND_WINDOW:
            out.append(None)
            continue
        change = 100 * (run.smooth[t] - run.smooth[t - TREND_WINDOW + 1])
        out.append("improving" if change > TREND_POINTS else "degrading" if change < -TREND_POINTS else "plateaued")
    return out


# ---------------------------------------------------------------- baselines

Rule = Callable[[Run], Outcome]


def keep_last(run: Run) -> Outcome:
    """The baseline that keeps the last checkpoint and never stops."""
    return Outcome(None, len(run.rows) - 1)


def fixed_epoch(epoch: int) -> Rule:
    """The baseline that stops at ``epoch`` (chosen on other data) and keeps the checkpoint there."""
    def rule(run: Run) -> Outcome:
        index = int(np.searchsorted(run.epochs, epoch))
        index = min(index, len(run.rows) - 1)
        return Outcome(index if index < len(run.rows) - 1 else None, index)
    return rule


def probe_patience(patience: int = 3) -> Rule:
    """The oracle: early stopping on the (raw, noisy) probe itself, keeping its best so far."""
    def rule(run: Run) -> Outcome:
        best, since = 0, 0
        for t in range(1, len(run.rows)):
            if run.probe[t] > run.probe[best]:
                best, since = t, 0
            else:
                since += 1
            if since >= patience:
                return Outcome(t, best)
        return Outcome(None, best)
    return rule


def loss_plateau(patience: int, tolerance: float) -> Rule:
    """The loss-plateau rule: stop when the training loss stalls, keep the checkpoint at the stop.

    It stalls when it has not fallen by ``tolerance`` (relative) below its best for ``patience``
    epochs.

    Returns:
        The rule.
    """
    def rule(run: Run) -> Outcome:
        best, since = math.inf, 0
        for t in range(1, len(run.rows)):
            loss = run.train_loss[t]
            if not math.isfinite(loss):
                continue
            improved = not math.isfinite(best) or loss < best - tolerance * abs(best)
            if improved:
                best, since = loss, 0
            else:
                since += 1
            if since >= patience:
                return Outcome(t if t < len(run.rows) - 1 else None, t)
        return Outcome(None, len(run.rows) - 1)
    return rule


def median_loss(runs: Sequence[Run], rule: Rule) -> tuple[float, float]:
    """The median points lost and the mean share of checkpoints saved by ``rule`` over ``runs``."""
    outcomes = [rule(r) for r in runs]
    return (statistics.median(points_lost(r, o) for r, o in zip(runs, outcomes, strict=True)),
            statistics.fmean(saved(r, o) for r, o in zip(runs, outcomes, strict=True)))


def choose_fixed_epoch(tuning: Sequence[Run], min_saved: float) -> int:
    """The epoch with the lowest median points lost on ``tuning`` among those that save at least ``min_saved`` of the checkpoints."""
    last = int(min(r.epochs[-1] for r in tuning))
    scored = []
    for epoch in range(1, last + 1):
        lost, kept = median_loss(tuning, fixed_epoch(epoch))
        if kept >= min_saved:
            scored.append((lost, epoch))
    return min(scored)[1] if scored else last


def choose_loss_plateau(tuning: Sequence[Run]) -> tuple[int, float]:
    """The loss-plateau setting (patience, tolerance) with the lowest median points lost on ``tuning``."""
    grid = [(p, tol) for p in (2, 3, 5) for tol in (0.0, 0.005, 0.01, 0.02)]
    return min(grid, key=lambda g: (median_loss(tuning, loss_plateau(*g))[0], g))


# ---------------------------------------------------------------- uncertainty

def block_bootstrap(values: dict[str, float], blocks: dict[str, str], statistic: Callable[[list[float]], float],
                    n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``statistic`` of ``values`` and its 95% interval, resampling whole blocks with replacement.

    ``values`` maps run key to number, ``blocks`` run key to block name: runs that share a block
    stay together.

    Returns:
        ``(estimate, low, high)``.
    """
    rng = np.random.default_rng(seed)
    names = sorted(set(blocks.values()))
    members = {b: [values[k] for k in values if blocks[k] == b] for b in names}
    estimates = []
    for _ in range(n):
        picked = rng.integers(0, len(names), len(names))
        sample = [v for i in picked for v in members[names[i]]]
        estimates.append(statistic(sample))
    low, high = np.percentile(estimates, [2.5, 97.5])
    return statistic(list(values.values())), float(low), float(high)

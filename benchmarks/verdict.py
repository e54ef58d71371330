r"""Does the verdict beat a rule of thumb?

Its stop, keep and progress rules on real training trajectories, every choice made on held-out
groups.

    python benchmarks/verdict.py mnist=benchmarks/data/trajectories-mnist.csv \
        fashion-mnist=benchmarks/data/trajectories-fashion-mnist.csv [--probe-test 5000]

The protocol (benchmarks/verdict_protocol.py; docs/verdicts.md gives the results):

* **Causal rules**: at epoch t a rule sees checkpoints 0..t only, and the label-free ones see
  no probe at all.
* **Held-out choices**, two settings. *Leave one data set out*: the runs of one data set are
  scored with trust borrowed from the same method on the other data set and with the verdict's
  settings, the fixed epoch and the loss-plateau thresholds chosen on the other data set.
  *Leave one method out*: the runs of one method are scored with trust from the other methods
  (same data set, within-run correlations pooled) and settings chosen on the other methods.
* **Scores against a denoised probe** (a smoothing spline per run): points lost = the run's
  denoised best minus the denoised probe of the kept checkpoint; saved = share of checkpoints
  after the stop. Intervals: a bootstrap over whole runs (checkpoints of a run move together).
* **Progress** against a probe-trend label with fixed settings (TREND_WINDOW, TREND_POINTS),
  independent of the detector: Cohen's kappa and balanced accuracy.
* **Baselines**: keep the last checkpoint; stop at a fixed epoch chosen on the held-out
  groups; a training-loss plateau; the probe itself (patience 3, the oracle).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score
from verdict_protocol import (
    DECLINE_POINTS,
    TREND_POINTS,
    TREND_WINDOW,
    Outcome,
    Rule,
    Run,
    block_bootstrap,
    choose_fixed_epoch,
    choose_loss_plateau,
    fixed_epoch,
    keep_last,
    load_runs,
    loss_plateau,
    points_lost,
    probe_patience,
    probe_standard_error,
    probe_trend,
    saved,
)

from ssl_eval.analysis import analyze_rows
from ssl_eval.analysis.tables import alerts, correlation_table
from ssl_eval.config import VerdictConfig
from ssl_eval.metrics import METRICS
from ssl_eval.verdict import family_verdict
from ssl_eval.verdict.progress import history
from ssl_eval.verdict.stopping import decide
from ssl_eval.verdict.trust import TRUSTED, classify_all

MIN_SAVED = 0.30
GRID: list[dict[str, Any]] = (
    [{"stop_rule": "best", "stop_patience": p, "min_epoch": e, "smooth": s}
     for p, e, s in itertools.product((3, 4, 6, 8, 10, 12), (0, 5, 10, 15), (1, 3, 5))]
    + [{"stop_rule": "trend", "window": w, "patience": p} for w, p in itertools.product((4, 6, 8), (1, 2, 3))])


# ---------------------------------------------------------------- trust and the verdict's rule

_SIGNALS: dict[tuple[str, ...], dict[str, bool]] = {}
_HISTORY: dict[tuple[Any, ...], list[Any]] = {}
_COLLAPSE: dict[str, dict[str, str]] = {}


def trusted_signals(runs: Sequence[Run], config: VerdictConfig) -> dict[str, bool]:
    """The signals the verdict reads when calibrated on ``runs`` (their own probe): the trusted metrics, else the defaults."""
    key = tuple(sorted(r.key for r in runs))
    if key not in _SIGNALS:
        _SIGNALS[key] = _trusted_signals(runs, config)
    return _SIGNALS[key]


def _trusted_signals(runs: Sequence[Run], config: VerdictConfig) -> dict[str, bool]:
    rows = [r for run in runs for r in run.rows]
    rows = [{**r, "run": f"{r['family']}/{r['run']}"} for r in rows]  # runs of several families stay apart
    # the within-run reading needs no checkpoint bootstrap (its own interval resamples runs)
    trust = classify_all(correlation_table(rows, bootstrap=False), config)
    names = [m for m, t in trust.items() if t.klass == TRUSTED] or list(config.default_signals)
    return {m: METRICS[m].higher_is_better for m in names}


class Verdict:
    """The tool's own stop/keep/progress rules on a run, probe hidden, with given signals."""

    def __init__(self, config: VerdictConfig, signals_of: dict[str, dict[str, bool]]) -> None:
        self.config, self.signals_of = config, signals_of

    def collapse(self, run: Run) -> dict[str, str]:
        """The collapse alerts of ``run``'s checkpoints (cached per run)."""
        if run.key not in _COLLAPSE:
            found = alerts(run.hidden(), **self.config.collapse_rule())
            _COLLAPSE[run.key] = {c: "collapse" for c in found.get("collapse", [])}
        return _COLLAPSE[run.key]

    def history(self, run: Run) -> list[Any]:
        """The run's progress history; the trend tests depend on the signals and the window only."""
        c = self.config
        key = (run.key, tuple(self.signals_of[run.key].items()), c.window, c.alpha, c.min_change)
        if key not in _HISTORY:
            _HISTORY[key] = history(run.name, run.hidden(), self.signals_of[run.key], c, self.collapse(run))
        return _HISTORY[key]

    def states(self, run: Run) -> list[str]:
        """The progress state at each checkpoint of ``run``."""
        return [p.state for p in self.history(run)]

    def __call__(self, run: Run) -> Outcome:
        """The verdict rule's outcome on ``run`` (seen without its probe): where it stops and which checkpoint it keeps."""
        rows = run.hidden()
        signals = self.signals_of[run.key]
        states = self.history(run) if self.config.stop_rule == "trend" else []
        stop, keep = decide(rows, states, signals, self.config, self.collapse(run))
        return Outcome(stop, keep if keep is not None else (len(rows) - 1 if stop is None else stop))


def tune(tuning: Sequence[Run], signals_of: dict[str, dict[str, bool]]) -> VerdictConfig:
    """The grid setting with the lowest median points lost on ``tuning`` among those that save at least MIN_SAVED (else the one that saves most)."""
    scored: list[tuple[bool, float, int]] = []
    for setting in GRID:
        rule = Verdict(VerdictConfig(**setting), signals_of)
        outcomes = [rule(r) for r in tuning]
        lost = statistics.median(points_lost(r, o) for r, o in zip(tuning, outcomes, strict=True))
        kept = statistics.fmean(saved(r, o) for r, o in zip(tuning, outcomes, strict=True))
        scored.append((kept < MIN_SAVED, lost if kept >= MIN_SAVED else -kept, len(scored)))
    return VerdictConfig(**GRID[min(scored)[2]])


# ---------------------------------------------------------------- the two held-out settings

def folds(runs: Sequence[Run], by: str) -> list[tuple[list[Run], list[Run], dict[str, dict[str, bool]]]]:
    """The held-out folds: scored runs, tuning runs and each run's signals, per held-out group.

    ``by`` is ``dataset`` (trust from the same method on the other data sets) or ``method`` (trust
    from the other methods of the same data set).

    Returns:
        One ``(scored, tuning, run key -> signals)`` per group.
    """
    base = VerdictConfig()
    out = []
    for group in sorted({getattr(r, by) for r in runs}):
        scored = [r for r in runs if getattr(r, by) == group]
        tuning = [r for r in runs if getattr(r, by) != group]
        signals_of: dict[str, dict[str, bool]] = {}
        for r in scored:
            lenders = ([t for t in tuning if t.method == r.method] if by == "dataset"
                       else [t for t in tuning if t.dataset == r.dataset])
            signals_of[r.key] = trusted_signals(lenders, base) if lenders else {m: True for m in base.default_signals}
        for r in tuning:  # the tuning runs calibrate on their own family: their labels are not held out
            signals_of[r.key] = trusted_signals([t for t in tuning if (t.dataset, t.method) == (r.dataset, r.method)], base)
        out.append((scored, tuning, signals_of))
    return out


def held_out(runs: Sequence[Run], by: str) -> dict[str, Any]:
    """Every rule's outcome on every run, each run scored with choices made without its group."""
    outcomes: dict[str, dict[str, Outcome]] = {}
    chosen: list[str] = []
    progress: dict[str, list[str]] = {}
    for scored, tuning, signals_of in folds(runs, by):
        config = tune(tuning, signals_of)
        epoch = choose_fixed_epoch(tuning, MIN_SAVED)
        plateau = choose_loss_plateau(tuning)
        group = getattr(scored[0], by)
        chosen.append(f"{group}: verdict {_setting(config)}; fixed epoch {epoch}; loss plateau patience {plateau[0]}, "
                      f"tolerance {plateau[1]}")
        verdict = Verdict(config, signals_of)
        rules: dict[str, Rule] = {"verdict (label-free)": verdict, "fixed epoch (held out)": fixed_epoch(epoch),
                                  "keep last": keep_last, "training-loss plateau": loss_plateau(*plateau),
                                  "probe oracle (patience 3)": probe_patience(3)}
        for name, rule in rules.items():
            for r in scored:
                outcomes.setdefault(name, {})[r.key] = rule(r)
        for r in scored:
            progress[r.key] = verdict.states(r)
    return {"outcomes": outcomes, "chosen": chosen, "progress": progress}


def _setting(config: VerdictConfig) -> str:
    if config.stop_rule == "best":
        return f"best, patience {config.stop_patience}, min epoch {config.min_epoch}, smooth {config.smooth}"
    return f"trend, window {config.window}, patience {config.patience}"


# ---------------------------------------------------------------- tables

def fmt(x: float, spec: str = ".2f") -> str:
    """``x`` formatted with ``spec``, or ``-`` when it is not finite."""
    return "-" if not math.isfinite(x) else format(x, spec)


def stop_table(runs: Sequence[Run], results: dict[str, dict[str, Any]]) -> str:
    """The stop table: points lost and checkpoints saved per setting and rule, against the fixed epoch."""
    by_key = {r.key: r for r in runs}
    lines = ["| setting | rule | median points lost | 90th pct | checkpoints saved | median difference to the fixed epoch [95% CI] |",
             "|---|---|---|---|---|---|"]
    for setting, res in results.items():
        fixed = res["outcomes"]["fixed epoch (held out)"]
        for name, outs in res["outcomes"].items():
            lost = {k: points_lost(by_key[k], o) for k, o in outs.items()}
            diff = {k: lost[k] - points_lost(by_key[k], fixed[k]) for k in outs}
            est, low, high = block_bootstrap(diff, {k: k for k in diff}, statistics.median)
            cell = "-" if name.startswith("fixed") else f"{est:+.2f} [{low:+.2f}, {high:+.2f}]"
            lines.append(f"| {setting} | {name} | {fmt(statistics.median(lost.values()))} "
                         f"| {fmt(float(np.percentile(list(lost.values()), 90)))} "
                         f"| {statistics.fmean(saved(by_key[k], o) for k, o in outs.items()):.0%} | {cell} |")
    return "\n".join(lines)


def progress_table(runs: Sequence[Run], results: dict[str, dict[str, Any]]) -> str:
    """The progress table: agreement of the progress states with the probe's trend, per setting."""
    lines = ["| setting | windows | Cohen's kappa | balanced accuracy | share the probe calls plateaued |", "|---|---|---|---|---|"]
    for setting, res in results.items():
        said, truth = _pairs(runs, res["progress"])
        lines.append(f"| {setting} | {len(said)} | {cohen_kappa_score(truth, said):.2f} "
                     f"| {balanced_accuracy_score(truth, said):.2f} | {truth.count('plateaued') / len(truth):.0%} |")
    return "\n".join(lines)


def _pairs(runs: Sequence[Run], progress: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    said, truth = [], []
    for r in runs:
        for state, label in zip(progress[r.key], probe_trend(r), strict=True):
            if label is None or state == "insufficient":
                continue
            said.append("degrading" if state == "collapsed" else state)
            truth.append(label)
    return said, truth


def decline_table(runs: Sequence[Run], results: dict[str, dict[str, Any]]) -> str:
    """The decline table: declining and collapsed runs called so, and false alarms, per setting."""
    lines = ["| setting | declining runs called degrading within 3 checkpoints | degrading in windows of other runs "
             "| collapsed runs called collapsed |", "|---|---|---|---|"]
    for setting, res in results.items():
        hits, declining, alarms, windows, collapsed, caught = 0, 0, 0, 0, 0, 0
        for r in runs:
            states, onset = res["progress"][r.key], r.declines()
            if onset is not None:
                declining += 1
                peak = int(np.nanargmax(r.smooth[:onset + 1]))
                hits += any(s in ("degrading", "collapsed") for s in states[peak:onset + 4])
            else:
                informative = [s for s in states if s != "insufficient"]
                windows += len(informative)
                alarms += sum(s == "degrading" for s in informative)
            if r.smooth[-1] < 0.5 * np.nanmax(r.smooth):  # the probe lost half its best accuracy: collapsed
                collapsed += 1
                caught += "collapsed" in states
        lines.append(f"| {setting} | {hits}/{declining} ({fmt(hits / declining if declining else math.nan, '.0%')}) "
                     f"| {alarms}/{windows} ({fmt(alarms / windows if windows else math.nan, '.0%')}) | {caught}/{collapsed} |")
    return "\n".join(lines)


def describe_set(runs: Sequence[Run], n_test: int | None) -> str:
    """The data set's description: runs, checkpoints, when the probe peaks, and its noise."""
    best = [int(r.epochs[int(np.nanargmax(r.smooth))]) for r in runs]
    declining = sum(r.declines() is not None for r in runs)
    gain = [100 * (np.nanmax(r.smooth) - r.smooth[0]) for r in runs]
    last_gap = [100 * (np.nanmax(r.smooth) - r.smooth[-1]) for r in runs]
    binomial, residual = probe_standard_error(runs, n_test)

    def q(xs: Sequence[float]) -> str:
        return " / ".join(f"{v:.0f}" for v in np.percentile(xs, [10, 25, 50, 75, 90]))

    return "\n".join([
        f"- {len(runs)} runs, {sum(len(r.rows) for r in runs)} checkpoints; data sets {sorted({r.dataset for r in runs})}, "
        f"methods {sorted({r.method for r in runs})}",
        f"- epoch of the denoised probe's best, 10/25/50/75/90th percentiles: {q(best)} (range {min(best)}-{max(best)})",
        f"- runs whose denoised probe falls {DECLINE_POINTS:g} point(s) below its best for good: {declining} ({declining / len(runs):.0%})",
        f"- gain of the denoised best over epoch 0, points, percentiles as above: {q(gain)}",
        f"- denoised best minus the last checkpoint, points: {q(last_gap)}",
        f"- the probe's own noise: binomial standard error {fmt(binomial)} points, residual SD around the "
        f"denoised probe {fmt(residual)} points",
        f"- probe-trend label: change of the denoised probe over {TREND_WINDOW} checkpoints beyond +/-{TREND_POINTS:g} points",
    ])


def per_method(runs: Sequence[Run], res: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per method: points lost by the verdict and by the fixed epoch, and whether their difference is below 0.

    The medians over the method's runs, and whether the bootstrap interval of the median difference
    lies below 0.

    Returns:
        Method -> its numbers.
    """
    by_key = {r.key: r for r in runs}
    out = {}
    for method in sorted({r.method for r in runs}):
        keys = [r.key for r in runs if r.method == method]
        v = {k: points_lost(by_key[k], res["outcomes"]["verdict (label-free)"][k]) for k in keys}
        f = {k: points_lost(by_key[k], res["outcomes"]["fixed epoch (held out)"][k]) for k in keys}
        est, low, high = block_bootstrap({k: v[k] - f[k] for k in keys}, {k: k for k in keys}, statistics.median)
        out[method] = {"runs": len(keys), "verdict_median_lost": statistics.median(v.values()),
                       "fixed_median_lost": statistics.median(f.values()), "difference": est, "ci_low": low, "ci_high": high,
                       "beats_fixed": bool(high < 0)}
    return out


def print_summaries(runs: Sequence[Run]) -> None:
    """Each family's verdict summary, as ``ssl-eval report`` prints it for a work dir of these runs."""
    config = VerdictConfig()
    for family in sorted({r.family for r in runs}):
        rows = [row for r in runs if r.family == family for row in r.rows]
        verdict = family_verdict(family, rows, analyze_rows(rows, collapse_rule=config.collapse_rule()), config=config)
        print(f"> **{family}**: {verdict['summary']}\n")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, validate the verdict's rules on the given runs, print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("sources", nargs="+", help="NAME=CSV: a report CSV per data set")
    parser.add_argument("--probe-test", type=int, default=None, help="probe test images (for the binomial standard error)")
    parser.add_argument("--evidence", type=Path, help="write the per-method evidence (JSON) the verdict ships")
    parser.add_argument("--summaries", metavar="NAME", help="print the verdict's summary of every family of data set NAME "
                        "as the tool gives it with the family's own labels (the README's examples)")
    args = parser.parse_args(argv)
    runs = load_runs(args.sources)
    if args.summaries:
        print_summaries([r for r in runs if r.dataset == args.summaries])
        return
    print("# Verdict validation: held out, causal, against a denoised probe\n")
    print("## The trajectory set\n")
    print(describe_set(runs, args.probe_test), "\n")
    results = {"leave one data set out": held_out(runs, "dataset"), "leave one method out": held_out(runs, "method")}
    for setting, res in results.items():
        print(f"Chosen on the held-out groups ({setting}):\n")
        print("\n".join(f"- {c}" for c in res["chosen"]), "\n")
    print("## Stop and keep (lower is better; the goal: the interval of the difference below 0, at >= 30% saved)\n")
    print(stop_table(runs, results), "\n")
    print("## Progress against the probe trend (goal: kappa >= 0.4)\n")
    print(progress_table(runs, results), "\n")
    print("## Declines and collapses (goals: >= 80% within 3 checkpoints, <= 10% false alarms, every collapse)\n")
    print(decline_table(runs, results), "\n")
    evidence = per_method(runs, results["leave one data set out"])
    print("## Per method (leave one data set out): does the label-free stop beat the fixed epoch?\n")
    print("| method | runs | verdict median lost | fixed epoch median lost | difference [95% CI] |\n|---|---|---|---|---|")
    for method, e in evidence.items():
        print(f"| {method} | {e['runs']} | {e['verdict_median_lost']:.2f} | {e['fixed_median_lost']:.2f} "
              f"| {e['difference']:+.2f} [{e['ci_low']:+.2f}, {e['ci_high']:+.2f}] |")
    if args.evidence:
        args.evidence.write_text(json.dumps({"source": "benchmarks/verdict.py, leave one data set out", "methods": evidence},
                                            indent=1, sort_keys=True) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

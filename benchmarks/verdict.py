"""Validate the verdict's rules on real training trajectories.

Reads per-checkpoint rows from work dirs (their records, read only) or from the CSV of
``ssl-eval report --format csv`` (columns family, run, epoch, checkpoint, method, the metrics,
probe_linear_acc), one data set per source: ``NAME=PATH``. For every family it computes the
analysis and the verdict as the tool does, then measures the rules against the probe:

* stop epoch vs best-probe epoch, probe points lost (the run's best probe accuracy minus that
  of the checkpoint kept when the stop fires), points lost by stopping alone, checkpoints saved;
* progress-state agreement: in every window, the state from the label-free signals against the
  same trend test run on the probe accuracy;
* which metrics came out trusted.

Two settings: **own labels** (trust from the family's own probe, the optimistic case) and
**borrowed** (each data set's families take their trust from the same method on the other data
set, their own labels hidden: what a user without labels would get). ``--tune NAME`` searches
window/alpha/patience/min_change on that data set only and reports every data set with the
chosen rules (the others are then held out).

    python benchmarks/verdict.py mnist=traj/mnist.csv fashion-mnist=traj/fashion-mnist.csv
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from ssl_eval.analysis import analyze_rows
from ssl_eval.config import VerdictConfig
from ssl_eval.verdict import family_verdict
from ssl_eval.verdict.trust import classify_all

GOALS = {"median_points_lost": 0.5, "saved": 0.30, "agreement": 0.80}
ID_COLUMNS = {"family", "run", "epoch", "checkpoint", "method", "arch", "flags"}


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def rows_from_csv(path: Path) -> dict[str, list[dict[str, Any]]]:
    families: dict[str, list[dict[str, Any]]] = {}
    with path.open(newline="") as f:
        for rec in csv.DictReader(f):
            family = rec["family"]
            probe_key = "probe_linear_acc" if "probe_linear_acc" in rec else "probe"
            metrics = {k: _float(v) for k, v in rec.items() if k not in ID_COLUMNS and not k.startswith("probe")}
            probe = _float(rec.get(probe_key, ""))
            checkpoint = rec.get("checkpoint") or f"epoch={int(rec['epoch']):02d}"
            families.setdefault(family, []).append({
                "id": f"{family}/{rec['run']}/{checkpoint.split('/')[-1]}", "run": rec["run"], "epoch": int(rec["epoch"]),
                "method": rec.get("method") or family, "metrics": {k: v for k, v in metrics.items() if k != "ami_ground_truth"},
                "probe": {"linear_acc": probe} if math.isfinite(probe) else {},
                "flags": [x for x in (rec.get("flags") or "").split(";") if x]})
    return {f: sorted(r, key=lambda x: (x["run"], x["epoch"])) for f, r in families.items()}


def rows_from_workdir(path: Path) -> dict[str, list[dict[str, Any]]]:
    from ssl_eval.analysis import families, family_rows
    from ssl_eval.workspace import Workspace

    ws = Workspace.at(path)
    return {f: family_rows(ws, f) for f in families(ws)}


def load(sources: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    out = {}
    for source in sources:
        name, sep, path = source.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=PATH (a work dir or a report CSV), got {source!r}")
        p = Path(path)
        out[name] = rows_from_csv(p) if p.is_file() else rows_from_workdir(p)
    return out


def evaluate(data: dict[str, dict[str, list[dict[str, Any]]]], config: VerdictConfig, *, borrowed: bool,
             analyses: dict | None = None) -> dict[str, dict[str, Any]]:
    """Per family (``<dataset>/<family>``): its verdict and the numbers of the retrospective."""
    analyses = analyses if analyses is not None else {}
    for name, fams in data.items():
        for fam, rows in fams.items():
            if (name, fam) not in analyses:
                analyses[(name, fam)] = analyze_rows(rows, collapse_rule=config.collapse_rule())
    out = {}
    for name, fams in data.items():
        others = [n for n in data if n != name]
        for fam, rows in fams.items():
            analysis = analyses[(name, fam)]
            lend = None
            if borrowed:
                if not others:
                    continue
                source = analyses.get((others[0], fam))
                if source is None:
                    continue
                lend = classify_all(source.get("metrics") or {}, config, source=f"borrowed from {others[0]} {fam}")
                hidden = [{**r, "probe": {}} for r in rows]
                verdict = family_verdict(fam, hidden, {**analysis, "metrics": {}, "n_with_probe": 0},
                                         config=config, borrowed=lend)
                # score it against the hidden probe
                scored = family_verdict(fam, rows, {**analysis, "metrics": {}}, config=config, borrowed=lend)
                verdict = {**verdict, "retrospective": scored["retrospective"]}
            else:
                verdict = family_verdict(fam, rows, analysis, config=config)
            out[f"{name}/{fam}"] = verdict
    return out


def summarise(verdicts: dict[str, dict[str, Any]]) -> dict[str, float]:
    runs = [r for v in verdicts.values() for r in (v.get("retrospective") or {}).values()]
    windows = [w for r in runs for w in r["windows"]]
    lost = [r["points_lost"] for r in runs if math.isfinite(r["points_lost"])]
    return {
        "runs": len(runs),
        "median_points_lost": statistics.median(lost) if lost else math.nan,
        "mean_points_lost": statistics.fmean(lost) if lost else math.nan,
        "saved": statistics.fmean(r["fraction_saved"] for r in runs) if runs else math.nan,
        "agreement": sum(w["agree"] for w in windows) / len(windows) if windows else math.nan,
        "windows": len(windows),
    }


def _meets(s: dict[str, float]) -> bool:
    return (s["median_points_lost"] <= GOALS["median_points_lost"] and s["saved"] >= GOALS["saved"]
            and s["agreement"] >= GOALS["agreement"])


def tune(data, base: VerdictConfig) -> tuple[VerdictConfig, list[tuple[dict[str, Any], dict[str, float]]]]:
    """Grid search on ``data``: the setting that meets the goals with most agreement, else the
    one with the smallest total shortfall against them."""
    grid = {"window": (4, 5, 6, 8), "alpha": (0.05, 0.1, 0.2), "patience": (1, 2, 3), "min_change": (0.0, 0.05, 0.1)}
    analyses: dict = {}
    tried = []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values, strict=True))
        config = base.model_copy(update=setting)
        tried.append((setting, summarise(evaluate(data, config, borrowed=False, analyses=analyses))))

    def shortfall(s):
        return (max(0.0, s["median_points_lost"] - GOALS["median_points_lost"]) / GOALS["median_points_lost"]
                + max(0.0, GOALS["saved"] - s["saved"]) / GOALS["saved"]
                + max(0.0, GOALS["agreement"] - s["agreement"]) / GOALS["agreement"])

    best = min(tried, key=lambda t: (not _meets(t[1]), shortfall(t[1]), -t[1]["agreement"], t[1]["median_points_lost"]))
    return base.model_copy(update=best[0]), tried


def fmt(x: Any, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, spec) if isinstance(x, (int, float)) else str(x)


def family_table(verdicts: dict[str, dict[str, Any]]) -> str:
    lines = ["| family | trusted | state now | stop epochs (best-probe epochs) | points lost (by stopping) | saved | agreement |",
             "|---|---|---|---|---|---|---|"]
    for key, v in verdicts.items():
        retro = v.get("retrospective") or {}
        trusted = [m for m, t in v["trust"].items() if t["class"] == "trusted"] or [f"none: {', '.join(v['signals']['names'])}"]
        stops = ", ".join(f"{'-' if r['stop_epoch'] is None else r['stop_epoch']} ({r['best_probe_epoch']})" for r in retro.values())
        lost = ", ".join(f"{r['points_lost']:.2f} ({r['points_lost_by_stopping']:.2f})" for r in retro.values())
        saved = statistics.fmean(r["fraction_saved"] for r in retro.values()) if retro else math.nan
        windows = [w for r in retro.values() for w in r["windows"]]
        agree = sum(w["agree"] for w in windows) / len(windows) if windows else math.nan
        lines.append(f"| {key} | {', '.join(trusted)} | {v['progress']['state']} | {stops} | {lost} | {fmt(saved, '.0%')} "
                     f"| {fmt(agree, '.0%')} |")
    return "\n".join(lines)


def summary_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = ["| setting | runs | median points lost (goal <= 0.5) | mean points lost | checkpoints saved (goal >= 30%) "
             "| agreement (goal >= 80%) | windows |", "|---|---|---|---|---|---|---|"]
    for label, s in rows:
        lines.append(f"| {label} | {s['runs']} | {fmt(s['median_points_lost'])} | {fmt(s['mean_points_lost'])} "
                     f"| {fmt(s['saved'], '.0%')} | {fmt(s['agreement'], '.0%')} | {s['windows']} |")
    return "\n".join(lines)


def confusion(verdicts: dict[str, dict[str, Any]]) -> str:
    states = ("improving", "plateaued", "degrading")
    counts = {(a, b): 0 for a in states + ("collapsed",) for b in states}
    for v in verdicts.values():
        for r in (v.get("retrospective") or {}).values():
            for w in r["windows"]:
                counts[(w["state"], w["probe_state"])] += 1
    lines = ["| label-free state \\ probe trend | " + " | ".join(states) + " |", "|---|" + "---|" * len(states)]
    for a in states + ("collapsed",):
        lines.append(f"| {a} | " + " | ".join(str(counts[(a, b)]) for b in states) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", help="NAME=PATH: a work dir or a report CSV per data set")
    parser.add_argument("--tune", help="tune the rules on this data set only (the others are held out)")
    args = parser.parse_args(argv)
    data = load(args.sources)
    config = VerdictConfig()
    print(f"# Verdict validation\n\ndefault rules: window {config.window}, alpha {config.alpha}, "
          f"patience {config.patience}, min_change {config.min_change}\n")
    own = evaluate(data, config, borrowed=False)
    rows = [(f"defaults, own labels, {name}", summarise({k: v for k, v in own.items() if k.startswith(name + '/')}))
            for name in data] + [("defaults, own labels, all", summarise(own))]
    if len(data) > 1:
        lent = evaluate(data, config, borrowed=True)
        rows += [("defaults, trust borrowed across data sets, all", summarise(lent))]
    print(summary_table(rows), "\n")
    print("## Per family (defaults, own labels)\n")
    print(family_table(own), "\n")
    print("### Progress state against the probe's own trend (all windows, defaults)\n")
    print(confusion(own), "\n")
    if len(data) > 1:
        print("## Per family (defaults, trust borrowed from the same method on the other data set)\n")
        print(family_table(lent), "\n")
    if args.tune:
        if args.tune not in data:
            raise SystemExit(f"--tune {args.tune!r}: not one of {list(data)}")
        tuned, tried = tune({args.tune: data[args.tune]}, config)
        setting = {k: getattr(tuned, k) for k in ("window", "alpha", "patience", "min_change")}
        print(f"## Tuned on {args.tune} only ({len(tried)} settings tried): {setting}\n")
        tuned_own = evaluate(data, tuned, borrowed=False)
        rows = [(f"tuned, own labels, {name}" + (" (tuning set)" if name == args.tune else " (held out)"),
                 summarise({k: v for k, v in tuned_own.items() if k.startswith(name + '/')})) for name in data]
        if len(data) > 1:
            rows.append(("tuned, borrowed across data sets, all", summarise(evaluate(data, tuned, borrowed=True))))
        print(summary_table(rows), "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

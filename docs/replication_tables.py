r"""Tables and figures of docs/replication.md from per-checkpoint tables or evaluated work dirs.

    python docs/replication_tables.py mnist=benchmarks/data/trajectories-mnist.csv \
        fashion-mnist=benchmarks/data/trajectories-fashion-mnist.csv --figures docs/figures

Each source is ``NAME=PATH``: a CSV of ``ssl-eval report --format csv`` (no retraining, no
re-evaluation: the analysis is recomputed from its rows exactly as the tool does it) or a
work dir after ``ssl-eval evaluate``. Prints markdown tables to stdout and writes small PNGs
into --figures.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.verdict import rows_from_csv
from ssl_eval.analysis import bootstrap_ci, correlate, correlation_table, pooled_tables
from ssl_eval.metrics import METRICS
from ssl_eval.reporting import figures as plots

SHOWN = ["silhouette", "ami_agreement", "entropy_gaussian", "entropy_knn", "entropy_z3", "rankme", "rankme_centered",
         "alpha_req", "nesum", "stable_rank", "uniformity", "norm_std", "lidar"]
ENTROPIES = ("entropy_gaussian", "entropy_knn", "entropy_z3")
ORDER = ["simclr", "mocov2", "simsiam", "byol", "barlowtwins", "vicreg"]
LATE_FRACTION = 0.5
PAPER_METHODS = ("simclr", "mocov2", "simsiam")


def f2(v) -> str:
    """``v`` with a sign and two decimals, or ``–`` when missing or NaN."""
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.2f}"


def signed_ci(c: dict, stat: str) -> str:
    """Signed statistic with its interval flipped the same way."""
    s = 1.0 if c.get("higher_is_better", True) else -1.0
    lo, hi = sorted([s * c.get(stat + "_ci_low", math.nan), s * c.get(stat + "_ci_high", math.nan)])
    return f"{f2(c.get(stat + '_signed'))} [{f2(lo)}, {f2(hi)}]"


def save_small(fig, path: Path) -> None:
    """PNG with a 256-colour palette: a third of the size, same look for line plots."""
    import io

    from PIL import Image

    Image.open(io.BytesIO(plots.figure_png(fig))).convert("RGB").quantize(colors=256).save(path, optimize=True)


def from_csv(path: Path) -> dict:
    """The parts of ``report.collect``'s document these tables read, from a report CSV."""
    families = rows_from_csv(path)
    doc = {"families": {f: {"checkpoints": rows, "late_fraction": LATE_FRACTION,
                            "correlations": correlation_table(rows, late_fraction=LATE_FRACTION)}
                        for f, rows in families.items()}}
    pooled_rows = [{**r, "family": f} for f, rows in families.items() for r in rows]
    doc["pooled"] = pooled_tables(pooled_rows, late_fraction=LATE_FRACTION)
    return doc


def from_workdir(path: Path) -> dict:
    """The report of the evaluated work dir at ``path``."""
    from ssl_eval.reporting.report import collect
    from ssl_eval.results.workspace import Workspace

    return collect(Workspace.at(path))


def probe_table(docs: dict, fams: list[str]) -> None:
    """Print the probe-accuracy table of every data set and family."""
    print("### Probe accuracy (linear, mean over runs)\n")
    print("| data set | family | epoch 0 | epoch 5 | last epoch | best checkpoint |\n|---|---|---|---|---|---|")
    for ds, doc in docs.items():
        for f in fams:
            rows = doc["families"][f]["checkpoints"]
            last = max(r["epoch"] for r in rows)
            at = {e: np.mean([r["probe"]["linear_acc"] for r in rows if r["epoch"] == e]) for e in (0, min(5, last), last)}
            best = max(rows, key=lambda r: r["probe"]["linear_acc"])
            print(f"| {ds} | {f} | {at[0]:.3f} | {at[min(5, last)]:.3f} | {at[last]:.3f} | "
                  f"{best['probe']['linear_acc']:.3f} ({best['id'].split('/', 1)[1]}) |")


def correlation_tables(docs: dict, fams: list[str]) -> None:
    """Print the signed-Spearman tables of every data set."""
    for ds, doc in docs.items():
        print(f"\n### {ds}: signed Spearman with the probe, all epochs [bootstrap 95% CI]\n")
        print("| metric | " + " | ".join(fams) + " | pooled raw | pooled ranks |")
        print("|---" * (len(fams) + 3) + "|")
        for m in SHOWN:
            cells = [signed_ci(doc["families"][f]["correlations"].get(m, {}), "spearman") for f in fams]
            cells += [signed_ci(doc["pooled"][k].get(m, {}), "spearman") for k in ("raw", "within_family_rank")]
            print(f"| {m} ({'↑' if METRICS[m].higher_is_better else '↓'}) | " + " | ".join(cells) + " |")
    for ds, doc in docs.items():
        late_from = LATE_FRACTION * max(r["epoch"] for d in doc["families"].values() for r in d["checkpoints"])
        print(f"\n### {ds}: signed Spearman with the probe, late window (epochs >= {late_from:g}) [bootstrap 95% CI]\n")
        print("| metric | " + " | ".join(fams) + " |")
        print("|---" * (len(fams) + 1) + "|")
        for m in SHOWN:
            cells = [signed_ci(doc["families"][f]["correlations"].get(m, {}), "spearman_late") for f in fams]
            print(f"| {m} ({'↑' if METRICS[m].higher_is_better else '↓'}) | " + " | ".join(cells) + " |")


def regret_table(docs: dict, fams: list[str]) -> None:
    """Print the regret table: probe points lost by each metric's pick."""
    print("\n### Regret of each metric's pick (probe accuracy points lost vs the family's best checkpoint)\n")
    cols = [(ds, f) for ds in docs for f in fams]
    print("| metric | " + " | ".join(f"{'M' if ds == 'mnist' else 'F'} {f}" for ds, f in cols) + " | "
          + " | ".join(f"{ds} pooled" for ds in docs) + " |")
    print("|---" * (len(cols) + len(docs) + 1) + "|")
    for m in SHOWN:
        cells = [docs[ds]["families"][f]["correlations"].get(m, {}).get("regret", math.nan) for ds, f in cols]
        cells += [docs[ds]["pooled"]["raw"].get(m, {}).get("regret", math.nan) for ds in docs]
        print(f"| {m} | " + " | ".join("–" if math.isnan(c) else f"{100 * c:.1f}" for c in cells) + " |")


def _run_mean(rows: list[dict], m: str, epoch: int) -> float:
    return float(np.mean([r["metrics"].get(m, math.nan) for r in rows if r["epoch"] == epoch]))


def entropy_table(docs: dict, fams: list[str]) -> None:
    """Print the entropy table: direction over training, and early vs late agreement with the probe."""
    print("\n### Entropy: direction over training, and early vs late agreement with the probe\n")
    print("Values are means over the runs; 'peak' is the epoch of the highest mean value; "
          "early = epochs below the late window, late = the late window.\n")
    print("| data set | family | metric | epoch 0 -> 1 -> last | peak epoch | Spearman with epoch, late window [CI] "
          "| signed ρ early [CI] | signed ρ late [CI] |")
    print("|---|---|---|---|---|---|---|---|")
    for ds, doc in docs.items():
        for f in fams:
            data = doc["families"][f]
            rows = data["checkpoints"]
            last = max(r["epoch"] for r in rows)
            late_from = data["late_fraction"] * last
            epochs = sorted({r["epoch"] for r in rows})
            for m in ENTROPIES:
                if not any(math.isfinite(r["metrics"].get(m, math.nan)) for r in rows):
                    continue
                means = [_run_mean(rows, m, e) for e in epochs]
                late = [r for r in rows if r["epoch"] >= late_from]
                xe, ye = [r["epoch"] for r in late], [r["metrics"].get(m, math.nan) for r in late]
                vs_epoch, ci_epoch = stats.spearmanr(xe, ye).statistic, bootstrap_ci(xe, ye)
                early = [r for r in rows if r["epoch"] < late_from]
                x, y = [r["metrics"].get(m, math.nan) for r in early], [r["probe"]["linear_acc"] for r in early]
                rho, ci = -correlate(x, y)["spearman"], bootstrap_ci(x, y)
                fmt = "{:+.0f}" if m != "entropy_z3" else "{:+.2f}"
                trio = " -> ".join(fmt.format(v) for v in (means[0], means[1], means[-1]))
                print(f"| {ds} | {f} | {m} | {trio} | {epochs[int(np.nanargmax(means))]} | {vs_epoch:+.2f} "
                      f"[{f2(ci_epoch['spearman_ci_low'])}, {f2(ci_epoch['spearman_ci_high'])}] | "
                      f"{f2(rho)} [{f2(-ci['spearman_ci_high'])}, {f2(-ci['spearman_ci_low'])}] | "
                      f"{signed_ci(data['correlations'].get(m, {}), 'spearman_late')} |")


def figures(docs: dict, fams: list[str], out: Path) -> None:
    """Save the heat maps and trajectory figures of every data set into ``out``."""
    for ds, doc in docs.items():
        slug = ds.replace("-", "")
        columns = {f: doc["families"][f]["correlations"] for f in fams}
        columns.update({"pooled": doc["pooled"]["raw"], "pooled (ranks)": doc["pooled"]["within_family_rank"]})
        save_small(plots.correlation_heatmap(columns, title=f"{ds}: signed Spearman with the linear probe"),
                   out / f"{slug}_heatmap.png")
        for f in (f for f in fams if f in PAPER_METHODS):
            data = doc["families"][f]
            save_small(plots.trajectories(data["checkpoints"], f"{ds} {f}"), out / f"{slug}_{f}_trajectories.png")
            if f in ("simclr", "simsiam"):
                save_small(plots.metric_vs_probe(data["checkpoints"], f"{ds} {f}", data["correlations"]),
                           out / f"{slug}_{f}_scatter.png")


def main() -> None:
    """Parse the command line, read every source, print the tables and save the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("sources", nargs="+", help="NAME=PATH: a report CSV or an evaluated work dir")
    parser.add_argument("--figures", type=Path, required=True)
    args = parser.parse_args()
    args.figures.mkdir(parents=True, exist_ok=True)
    docs = {}
    for item in args.sources:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=PATH (a report CSV or a work dir), got {item!r}")
        docs[name] = from_csv(Path(path)) if path.endswith(".csv") else from_workdir(Path(path))
    present = {f for d in docs.values() for f in d["families"]}
    fams = [f for f in ORDER if f in present] + sorted(present - set(ORDER))
    probe_table(docs, fams)
    correlation_tables(docs, fams)
    regret_table(docs, fams)
    entropy_table(docs, fams)
    figures(docs, fams, args.figures)


if __name__ == "__main__":
    main()

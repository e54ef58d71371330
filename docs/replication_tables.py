"""Tables and figures of docs/replication.md from evaluated work dirs (after `ssl-eval evaluate`).

    .venv/bin/python docs/replication_tables.py mnist=W1 fashion-mnist=W2 --figures docs/figures

Prints markdown tables to stdout and writes small PNGs into --figures.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssl_eval import plots  # noqa: E402
from ssl_eval.analysis import correlate  # noqa: E402
from ssl_eval.metrics import METRICS  # noqa: E402
from ssl_eval.report import collect  # noqa: E402
from ssl_eval.workspace import Workspace  # noqa: E402

SHOWN = ["silhouette", "ami_agreement", "entropy_gaussian", "entropy_knn", "rankme", "rankme_centered",
         "alpha_req", "nesum", "stable_rank", "uniformity", "norm_std"]


def f2(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.2f}"


def ci(c: dict, stat: str) -> str:
    return f"{f2(c.get(stat))} [{f2(c.get(stat + '_ci_low'))}, {f2(c.get(stat + '_ci_high'))}]"


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdirs", nargs="+", help="DATASET=WORKDIR")
    parser.add_argument("--figures", type=Path, required=True)
    args = parser.parse_args()
    args.figures.mkdir(parents=True, exist_ok=True)
    docs = {}
    for item in args.workdirs:
        name, workdir = item.split("=", 1)
        docs[name] = collect(Workspace.at(workdir))
    fams = sorted({f for d in docs.values() for f in d["families"]}, key=lambda f: ["simclr", "mocov2", "simsiam"].index(f) if f in ("simclr", "mocov2", "simsiam") else 9)

    print("### Probe accuracy (linear, mean over runs)\n")
    print("| data set | family | epoch 0 | last epoch | best checkpoint |\n|---|---|---|---|---|")
    for ds, doc in docs.items():
        for f in fams:
            rows = doc["families"][f]["checkpoints"]
            last = max(r["epoch"] for r in rows)
            first_acc = np.mean([r["probe"]["linear_acc"] for r in rows if r["epoch"] == 0])
            last_acc = np.mean([r["probe"]["linear_acc"] for r in rows if r["epoch"] == last])
            best = max(rows, key=lambda r: r["probe"]["linear_acc"])
            print(f"| {ds} | {f} | {first_acc:.3f} | {last_acc:.3f} | {best['probe']['linear_acc']:.3f} ({best['id'].split('/', 1)[1]}) |")

    for window, stat in (("all epochs", "spearman"), ("late window", "spearman_late")):
        print(f"\n### Signed Spearman with the probe, {window} [bootstrap 95% CI]\n")
        cols = [(ds, f) for ds in docs for f in fams]
        print("| metric | " + " | ".join(f"{ds} {f}" for ds, f in cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
        for m in SHOWN:
            cells = [signed_ci(docs[ds]["families"][f]["correlations"].get(m, {}), stat) for ds, f in cols]
            print(f"| {m} ({'↑' if METRICS[m].higher_is_better else '↓'}) | " + " | ".join(cells) + " |")

    print("\n### Regret of each metric's pick (probe accuracy points lost vs the best checkpoint)\n")
    cols = [(ds, f) for ds in docs for f in fams]
    print("| metric | " + " | ".join(f"{ds} {f}" for ds, f in cols) + " | " + " | ".join(f"{ds} pooled" for ds in docs) + " |")
    print("|---" * (len(cols) + len(docs) + 1) + "|")
    for m in SHOWN:
        cells = [docs[ds]["families"][f]["correlations"].get(m, {}).get("regret", math.nan) for ds, f in cols]
        cells += [docs[ds]["pooled"]["raw"].get(m, {}).get("regret", math.nan) for ds in docs]
        print(f"| {m} | " + " | ".join("–" if math.isnan(c) else f"{c:.3f}" for c in cells) + " |")

    print("\n### Pooled over the three families: signed Spearman, raw values vs within-family ranks\n")
    print("| metric | " + " | ".join(f"{ds} raw | {ds} ranks" for ds in docs) + " |")
    print("|---" * (2 * len(docs) + 1) + "|")
    for m in SHOWN:
        cells = []
        for ds in docs:
            p = docs[ds]["pooled"]
            cells += [signed_ci(p["raw"].get(m, {}), "spearman"), signed_ci(p["within_family_rank"].get(m, {}), "spearman")]
        print(f"| {m} | " + " | ".join(cells) + " |")

    print("\n### Entropy: direction over training, and early vs late agreement with the probe\n")
    print("| data set | family | metric | change epoch 0 -> last (mean over runs) | Spearman with epoch | signed ρ early (epochs < half) | signed ρ late |")
    print("|---|---|---|---|---|---|---|")
    for ds, doc in docs.items():
        for f in fams:
            data = doc["families"][f]
            rows = data["checkpoints"]
            last = max(r["epoch"] for r in rows)
            late_from = data["late_fraction"] * last
            for m in ("entropy_gaussian", "entropy_knn"):
                runs = sorted({r["run"] for r in rows})
                change = np.mean([[r["metrics"].get(m, math.nan) for r in rows if r["run"] == run and r["epoch"] == last][0]
                                  - [r["metrics"].get(m, math.nan) for r in rows if r["run"] == run and r["epoch"] == 0][0] for run in runs])
                vs_epoch = stats.spearmanr([r["epoch"] for r in rows], [r["metrics"].get(m, math.nan) for r in rows]).statistic
                early = [r for r in rows if r["epoch"] < late_from]
                early_rho = -correlate([r["metrics"].get(m, math.nan) for r in early], [r["probe"]["linear_acc"] for r in early])["spearman"]
                print(f"| {ds} | {f} | {m} | {change:+.3f} | {vs_epoch:+.2f} | {f2(early_rho)} | "
                      f"{f2(data['correlations'].get(m, {}).get('spearman_late_signed'))} |")

    for ds, doc in docs.items():
        slug = ds.replace("-", "")
        columns = {f: doc["families"][f]["correlations"] for f in fams}
        columns.update({"pooled": doc["pooled"]["raw"], "pooled (ranks)": doc["pooled"]["within_family_rank"]})
        save_small(plots.correlation_heatmap(columns, title=f"{ds}: signed Spearman with the linear probe"), args.figures / f"{slug}_heatmap.png")
        for f in fams:
            data = doc["families"][f]
            save_small(plots.trajectories(data["checkpoints"], f"{ds} {f}"), args.figures / f"{slug}_{f}_trajectories.png")
            if f in ("simclr", "simsiam"):
                save_small(plots.metric_vs_probe(data["checkpoints"], f"{ds} {f}", data["correlations"]),
                           args.figures / f"{slug}_{f}_scatter.png")


if __name__ == "__main__":
    main()

"""Per-family analysis: how well each label-free metric tracks the linear probe.

For every label-free metric of a family: Spearman, Kendall and Pearson correlation with the
probe accuracy over all the family's checkpoints (with p-values), Spearman over the late
window (epochs at or after ``late_fraction`` of the last), and selection regret: the probe
accuracy of the best checkpoint minus that of the checkpoint the metric would pick, reading
the metric's direction from the registry.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from typing import Any

import numpy as np
from scipy import stats

from ssl_eval.metrics import METRICS, label_free_metrics
from ssl_eval.workspace import Workspace

PROBE_TARGET = "linear_acc"


def family_rows(workspace: Workspace, family: str) -> list[dict[str, Any]]:
    """One row per evaluated checkpoint of ``family``: epoch, metric values, probe accuracies."""
    rows = []
    records = workspace.records
    for checkpoint_id in records.checkpoint_ids():
        if not checkpoint_id.startswith(f"{family}/"):
            continue
        ckpt = records.get(checkpoint_id, "checkpoint")
        if ckpt is None or workspace.embeddings.provenance(checkpoint_id) is None:
            continue
        metrics: dict[str, float] = {}
        flags: set[str] = set()
        for part in records.parts(checkpoint_id, "metrics-"):
            rec = records.get(checkpoint_id, part)
            if rec and rec.get("fingerprint") == ckpt["fingerprint"]:
                metrics.update(rec["values"])
                flags.update(rec.get("flags", []))
        probe = records.get(checkpoint_id, "probe")
        rows.append(
            {
                "id": checkpoint_id,
                "run": ckpt["run"],
                "epoch": ckpt["epoch"],
                "method": ckpt.get("method"),
                "arch": ckpt.get("arch"),
                "metrics": metrics,
                "probe": probe["values"] if probe and probe.get("fingerprint") == ckpt["fingerprint"] else {},
                "flags": sorted(flags),
            }
        )
    rows.sort(key=lambda r: (r["run"], r["epoch"]))
    return rows


def rows_digest(rows: list[dict[str, Any]]) -> str:
    """A short hash of a family's rows: tells whether its analysis or mirror is stale."""
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]


def families(workspace: Workspace) -> list[str]:
    return sorted({cid.split("/")[0] for cid in workspace.records.checkpoint_ids()})


def _finite_pairs(x: list[float], y: list[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def correlate(x: list[float], y: list[float]) -> dict[str, float]:
    """Spearman, Kendall and Pearson with p-values; NaN where undefined (n < 3 or constant)."""
    a, b = _finite_pairs(x, y)
    out: dict[str, float] = {"n": float(len(a))}
    tests = {"spearman": stats.spearmanr, "kendall": stats.kendalltau, "pearson": stats.pearsonr}
    for name, test in tests.items():
        if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
            out[name], out[f"{name}_p"] = math.nan, math.nan
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = test(a, b)
        out[name], out[f"{name}_p"] = float(result.statistic), float(result.pvalue)
    return out


def selection_regret(metric: list[float], probe: list[float], *, higher_is_better: bool) -> tuple[int | None, float]:
    """Index the metric would pick, and best probe accuracy minus the pick's accuracy."""
    m, p = np.asarray(metric, dtype=float), np.asarray(probe, dtype=float)
    valid = np.isfinite(m) & np.isfinite(p)
    if not valid.any():
        return None, math.nan
    scores = np.where(valid, m if higher_is_better else -m, -np.inf)
    pick = int(np.argmax(scores))
    return pick, float(np.nanmax(np.where(valid, p, np.nan)) - p[pick])


def analyze_rows(rows: list[dict[str, Any]], *, late_fraction: float = 0.5) -> dict[str, Any]:
    labelled = [r for r in rows if PROBE_TARGET in r["probe"]]
    probe = [r["probe"][PROBE_TARGET] for r in labelled]
    last_epoch = max((r["epoch"] for r in labelled), default=0)
    late = [i for i, r in enumerate(labelled) if r["epoch"] >= late_fraction * last_epoch]
    result: dict[str, Any] = {"n_checkpoints": len(rows), "n_with_probe": len(labelled), "metrics": {}}
    for name in label_free_metrics():
        values = [r["metrics"].get(name, math.nan) for r in labelled]
        if all(not np.isfinite(v) for v in values):
            continue
        corr = correlate(values, probe)
        late_corr = correlate([values[i] for i in late], [probe[i] for i in late])
        pick, regret = selection_regret(values, probe, higher_is_better=METRICS[name].higher_is_better)
        result["metrics"][name] = {
            **corr,
            "spearman_late": late_corr["spearman"],
            "n_late": late_corr["n"],
            "higher_is_better": METRICS[name].higher_is_better,
            "pick": labelled[pick]["id"] if pick is not None else None,
            "regret": regret,
        }
    return result


def analyze_family(workspace: Workspace, family: str, *, late_fraction: float = 0.5) -> dict[str, Any]:
    """Analyse one family from its records and store the result as its correlations record."""
    rows = family_rows(workspace, family)
    analysis = {"family": family, "inputs_digest": rows_digest(rows), **analyze_rows(rows, late_fraction=late_fraction)}
    workspace.records.put(family, "correlations", analysis)
    return analysis

"""Correlation tables of the label-free metrics against the probe, and the alerts.

Every label-free metric of a set of checkpoint rows against the probe (whole run and late window,
signed by the metric's direction, pick and regret), the pooled tables over several families (raw and
on within-family ranks), and the collapse and non-finite alerts. Pure functions of rows
(:func:`ssl_eval.analysis.family_rows`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from ssl_eval.analysis.collapse import collapse_reasons
from ssl_eval.analysis.correlation import (
    CONFIDENCE,
    N_BOOTSTRAP,
    STATS,
    bootstrap_ci,
    correlate,
    selection_regret,
    within_run_spearman,
)
from ssl_eval.metrics import METRICS, label_free_metrics

__all__ = ["PROBE_TARGET", "ALERT_KINDS", "correlation_table", "analyze_rows", "pooled_tables", "alerts", "alert_tag"]

PROBE_TARGET = "linear_acc"
ALERT_KINDS = ("collapse", "non_finite")


def _stats_block(values: list[float], probe: list[float], *, suffix: str, sign: float, random_state: int,
                 bootstrap: bool = True) -> dict[str, float]:
    """Correlations, p-values, CIs (NaN without ``bootstrap``) and signed correlations, each key ending in ``suffix``."""
    intervals = (bootstrap_ci(values, probe, random_state=random_state) if bootstrap
                 else {f"{s}_ci_{side}": math.nan for s in STATS for side in ("low", "high")})
    corr = {**correlate(values, probe), **intervals}
    out = {}
    for key, value in corr.items():
        name, _, rest = key.partition("_")
        out[f"{name}{suffix}{'_' + rest if rest else ''}"] = value
    for name in STATS:
        out[f"{name}{suffix}_signed"] = sign * corr[name]
    return out


def correlation_table(rows: list[dict[str, Any]], *, late_fraction: float = 0.5, random_state: int = 0,
                      bootstrap: bool = True) -> dict[str, Any]:
    """Every label-free metric's statistics against the probe over ``rows`` (see the module doc).

    Args:
        rows: checkpoint rows (:func:`ssl_eval.analysis.family_rows`).
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].
        random_state: seed of the bootstrap.
        bootstrap: False leaves the checkpoint-bootstrap intervals NaN (the within-run interval,
            a cheap bootstrap over runs, is always computed): for callers that need only those.

    Returns:
        metric -> its whole-run and ``_late`` statistics, intervals, signed values, ``pick``,
        ``best`` and ``regret``; metrics without a finite value are left out.

    Raises:
        ValueError: ``late_fraction`` outside [0, 1].
    """
    if not 0.0 <= late_fraction <= 1.0:
        raise ValueError(f"late_fraction must be in [0, 1], got {late_fraction!r}; 0.5 keeps the second half of training.")
    labelled = [r for r in rows if PROBE_TARGET in r["probe"]]
    probe = [r["probe"][PROBE_TARGET] for r in labelled]
    last_epoch = max((r["epoch"] for r in labelled), default=0)
    late = [i for i, r in enumerate(labelled) if r["epoch"] >= late_fraction * last_epoch]
    best = int(np.nanargmax(probe)) if probe and np.isfinite(probe).any() else None
    runs: dict[str, list[int]] = {}
    for i, r in enumerate(labelled):
        runs.setdefault(str(r.get("run")), []).append(i)
    table: dict[str, Any] = {}
    for name in label_free_metrics():
        values = [r["metrics"].get(name, math.nan) for r in labelled]
        if all(not np.isfinite(v) for v in values):
            continue
        hib = METRICS[name].higher_is_better
        sign = 1.0 if hib else -1.0
        pick, regret = selection_regret(values, probe, higher_is_better=hib)
        within = within_run_spearman(
            [([values[i] for i in idx], [probe[i] for i in idx]) for idx in runs.values()], random_state=random_state)
        table[name] = {
            **_stats_block(values, probe, suffix="", sign=sign, random_state=random_state, bootstrap=bootstrap),
            **_stats_block([values[i] for i in late], [probe[i] for i in late], suffix="_late", sign=sign,
                           random_state=random_state, bootstrap=bootstrap),
            "higher_is_better": hib,
            # within-run Spearman averaged over runs, signed, its interval a block bootstrap over runs
            "within_run_n_runs": within["n_runs"],
            "within_run_spearman_signed": sign * within["rho"],
            "within_run_ci_low": min(sign * within["ci_low"], sign * within["ci_high"]),
            "within_run_ci_high": max(sign * within["ci_low"], sign * within["ci_high"]),
            "pick": labelled[pick]["id"] if pick is not None else None,
            "pick_probe": probe[pick] if pick is not None else math.nan,
            "best": labelled[best]["id"] if best is not None else None,
            "regret": regret,
        }
    return table


def analyze_rows(rows: list[dict[str, Any]], *, late_fraction: float = 0.5, random_state: int = 0,
                 collapse_rule: dict[str, float] | None = None) -> dict[str, Any]:
    """The analysis of one family's rows: correlations, alerts and what they were computed with.

    Args:
        rows: checkpoint rows (:func:`ssl_eval.analysis.family_rows`).
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].
        random_state: seed of the bootstrap.
        collapse_rule: keyword arguments of :func:`ssl_eval.analysis.collapse.collapse_reasons`; None: its defaults.

    Returns:
        ``n_checkpoints``, ``n_with_probe``, ``late_fraction``, ``late_from_epoch``, ``n_bootstrap``,
        ``confidence``, ``collapse_rule``, ``alerts`` and ``metrics`` (:func:`correlation_table`).

    Raises:
        ValueError: ``late_fraction`` outside [0, 1], or an invalid collapse rule.
    """
    labelled = [r for r in rows if PROBE_TARGET in r["probe"]]
    return {
        "n_checkpoints": len(rows),
        "n_with_probe": len(labelled),
        "late_fraction": late_fraction,
        "late_from_epoch": late_fraction * max((r["epoch"] for r in labelled), default=0),
        "n_bootstrap": N_BOOTSTRAP,
        "confidence": CONFIDENCE,
        "collapse_rule": dict(collapse_rule or {}),
        "alerts": alerts(rows, **(collapse_rule or {})),
        "metrics": correlation_table(rows, late_fraction=late_fraction, random_state=random_state),
    }


def _within_family_ranks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` with metric values and probe accuracy replaced by their rank within the family.

    Ranks are scaled to [0, 1]; ties get average ranks and NaN stays NaN.

    Returns:
        New row dicts; ``rows`` is left unchanged.
    """
    out = [{**r, "metrics": dict(r["metrics"]), "probe": dict(r["probe"])} for r in rows]
    for family in {r["family"] for r in rows}:
        mine = [r for r in out if r["family"] == family]
        for part, names in (("metrics", label_free_metrics()), ("probe", [PROBE_TARGET])):
            for name in names:
                values = np.array([r[part].get(name, math.nan) for r in mine], dtype=float)
                finite = np.isfinite(values)
                if not finite.any():
                    continue
                ranks = np.full(len(values), math.nan)
                ranks[finite] = (stats.rankdata(values[finite]) - 1) / max(1, finite.sum() - 1)
                for r, v in zip(mine, ranks, strict=True):
                    if name in r[part]:
                        r[part][name] = float(v)
    return out


def pooled_tables(rows: list[dict[str, Any]], *, late_fraction: float = 0.5) -> dict[str, Any]:
    """``raw`` and ``within_family_rank`` correlation tables of rows from several families.

    Args:
        rows: checkpoint rows, each with its ``family``; see :func:`ssl_eval.analysis.pooled_analysis`.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].

    Returns:
        ``raw`` (:func:`correlation_table` of the rows as they are) and ``within_family_rank``
        (of within-family ranks, without pick or regret).

    Raises:
        ValueError: a row without ``family``.
    """
    missing = [r.get("id") for r in rows if "family" not in r]
    if missing:
        raise ValueError(f"pooled rows need a 'family' key; rows {missing[:3]} have none: add the family each came from.")
    return {
        "raw": correlation_table(rows, late_fraction=late_fraction),
        "within_family_rank": {
            name: {k: v for k, v in c.items() if k not in ("pick", "pick_probe", "best", "regret")}
            for name, c in correlation_table(_within_family_ranks(rows), late_fraction=late_fraction).items()
        },
    }


def alerts(rows: list[dict[str, Any]], **collapse_rule: float) -> dict[str, Any]:
    """Checkpoints that need a look: collapsed ones (with reasons) and non-finite ones.

    Args:
        rows: checkpoint rows (:func:`ssl_eval.analysis.family_rows`).
        **collapse_rule: keyword arguments of :func:`ssl_eval.analysis.collapse.collapse_reasons`.

    Returns:
        ``collapse`` (sorted ids judged collapsed), ``reasons`` (id -> why) and ``non_finite``
        (ids flagged "non_finite": the embeddings hold NaN or inf).

    Raises:
        ValueError: an invalid collapse rule.
    """
    reasons = collapse_reasons(rows, **collapse_rule)
    non_finite = [r["id"] for r in rows if "non_finite" in r.get("flags", ())]
    return {"collapse": sorted(reasons), "non_finite": non_finite, "reasons": reasons}


def alert_tag(found: dict[str, list[str]]) -> str:
    """The MLflow tag value for :func:`alerts`' result.

    Args:
        found: the result of :func:`alerts`.

    Returns:
        "collapse", "non_finite", both joined by a comma, or "none".
    """
    return ",".join(kind for kind in ALERT_KINDS if found.get(kind)) or "none"

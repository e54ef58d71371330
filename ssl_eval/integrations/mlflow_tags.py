"""What the MLflow mirror writes about a family beyond its metric series: tags and params.

A training run's tags (:func:`run_tags`), the family's own (:func:`family_tags`: its verdict,
alerts and whether the stored verdict is stale), the evaluation's settings as params
(:func:`evaluation_params`) and the numbers of the summary run (:func:`summary_values`).
"""

from __future__ import annotations

from typing import Any

from ssl_eval.analysis import STALE_HINT, alert_tag, alerts
from ssl_eval.common.names import display_name
from ssl_eval.config import Config
from ssl_eval.results.answers import FamilyAnalysisRecord, VerdictRecord
from ssl_eval.results.workspace import Workspace
from ssl_eval.verdict.answers import TAG_PREFIX, verdict_tags

__all__ = ["ALERT_TAG", "DESCRIPTION_MAX", "DESCRIPTION_TAG", "GONE_TAG", "STALE_TAG",
           "evaluation_params", "family_tags", "run_tags", "summary_values"]

ALERT_TAG = "ssl_eval.alert"  # "collapse", "non_finite", both comma-joined, or "none"
STALE_TAG = TAG_PREFIX + "stale"  # "no", or why the stored verdict no longer answers ("stale, run `ssl-eval evaluate` (...)")
GONE_TAG = "ssl_eval.gone"  # checkpoints deleted from the store, comma-joined, or "none"
# MLflow shows this tag as the description of an experiment (experiments list) or of a run (its page)
DESCRIPTION_TAG = "mlflow.note.content"
DESCRIPTION_MAX = 5000  # MLflow keeps tag values up to 8000 characters


def evaluation_params(config: Config, family: str) -> dict[str, str]:
    """The settings that decide a family's numbers, as MLflow params.

    For example ``data.n_eval``, ``metrics.k``, ``probe.random_state``, ``family.arch``.

    Returns:
        Dotted setting name -> its value as text.
    """
    sections = {"data": config.data, "metrics": config.metrics, "probe": config.probe, "family": config.family(family)}
    params = {}
    for section, model in sections.items():
        for key, value in model.model_dump(mode="json").items():
            params[f"{section}.{key}"] = "auto" if value is None else str(value)
    return params


def summary_values(rows: list[dict[str, Any]], analysis: FamilyAnalysisRecord) -> dict[str, float]:
    """The numbers that compare families at a glance; the full table stays in the correlations run.

    The probe (first, last, best), the number of checkpoints and one signed Spearman per metric.

    Returns:
        Metric key -> value, as the summary run logs them.
    """
    probes = sorted((r["epoch"], r["probe"]["linear_acc"]) for r in rows if "linear_acc" in r["probe"])
    values = {"checkpoints": float(len(rows))}
    if probes:
        values.update({"probe/first_linear_acc": probes[0][1], "probe/last_linear_acc": probes[-1][1],
                       "probe/best_linear_acc": max(p for _, p in probes)})
    values.update({f"signed_spearman/{metric}": c["spearman_signed"]
                   for metric, c in analysis.metrics.items() if c.get("spearman_signed") is not None})
    return values


def run_tags(workspace: Workspace, family: str, run: str, history_rows: list[dict[str, Any]], failed: list[str],
              store: str, verdict: VerdictRecord | None, rule: dict[str, Any]) -> dict[str, str]:
    """A training run's tags.

    Family, run, store, flags, failed and deleted checkpoints, alerts, its verdict, and
    method/arch/dataset of its latest checkpoint.

    Returns:
        Tag name -> value.
    """
    mine = [r for r in history_rows if r["run"] == run and not r.get("gone")]
    tags = {
        "family": display_name(family),
        "run": display_name(run),
        "store": store,
        "ssl_eval.flags": ",".join(sorted({f for r in mine for f in r["flags"]})) or "none",
        # failed checkpoints, listed with reasons by `ssl-eval report`
        "ssl_eval.failed": ",".join(c.split("/")[2] for c in failed if c.split("/")[1] == run) or "none",
        ALERT_TAG: alert_tag(alerts(mine, **rule)),
        # checkpoints deleted from the store: their points stay, the analyses leave them out
        GONE_TAG: ",".join(r["id"].split("/")[2] for r in history_rows if r["run"] == run and r.get("gone")) or "none",
        **(verdict_tags(verdict, run) if verdict else {}),
    }
    if mine:
        prov = workspace.embeddings.provenance(mine[-1]["id"]) or {}
        tags.update(method=str(mine[-1].get("method") or family), arch=str(mine[-1].get("arch") or ""),
                    dataset=str(prov.get("dataset", "")))
    return tags


def family_tags(family: str, store: str, rows: list[dict[str, Any]], rule: dict[str, Any], verdict: VerdictRecord | None,
                 stale: list[str]) -> dict[str, str]:
    """The family's own tags (its correlations and summary runs).

    The stored verdict, and ``ssl_eval.verdict.stale`` when it no longer answers for the records or
    the configuration.

    Returns:
        Tag name -> value.
    """
    return {"family": display_name(family), "store": store, ALERT_TAG: alert_tag(alerts(rows, **rule)),
            **(verdict_tags(verdict) if verdict else {}),
            STALE_TAG: f"{STALE_HINT} ({'; '.join(stale)})" if stale else "no",
            **({DESCRIPTION_TAG: verdict.summary[:DESCRIPTION_MAX]} if verdict and verdict.summary else {})}

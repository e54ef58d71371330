"""Prefect tasks: a family's correlations, and the pooled analysis over every family.

A family's collapse and non-finite alerts become warnings in the run's log; the pooled analysis runs
once per flow run after all the families' analyses (the verdicts read it: tasks/verdict.py runs
after it).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from ssl_eval.analysis import ALERT_KINDS, store_family_analysis, store_pooled_analysis
from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import FamilyAnalysis, PooledAnalysis
from ssl_eval.results.workspace import Workspace


@task(name="analyze-family", task_run_name="analyze {family}")
def analyze_family(family: str, workspace: Workspace, config: Config) -> FamilyAnalysis:
    """A family's correlations, stored as its ``correlations`` record; its alerts are logged as warnings."""
    analysis = store_family_analysis(workspace, family, late_fraction=config.analysis.late_fraction,
                              collapse_rule=config.verdict.collapse_rule())
    found = analysis.alerts
    for kind in ALERT_KINDS:
        if found[kind]:
            listed = ", ".join(f"{cid} ({found['reasons'][cid]})" if cid in found.get("reasons", {}) else cid
                               for cid in found[kind])
            get_run_logger().warning("%s alert in %s: %d checkpoint(s): %s", kind, family, len(found[kind]), listed)
    return FamilyAnalysis(family, n_checkpoints=analysis.n_checkpoints, n_metrics=len(analysis.metrics),
                          alerts={kind: len(found[kind]) for kind in ALERT_KINDS})


@task(name="analyze-pooled", task_run_name="analyze pooled")
def analyze_pooled(workspace: Workspace, config: Config) -> PooledAnalysis:
    """Every family's checkpoints together, stored as the ``_pooled`` correlations record.

    The records of families not refreshed by this run are included.

    Returns:
        The pooled analysis's families and checkpoint count.
    """
    pooled = store_pooled_analysis(workspace, late_fraction=config.analysis.late_fraction)
    return PooledAnalysis(pooled.families, n_checkpoints=pooled.n_checkpoints)

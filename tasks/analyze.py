"""Prefect tasks: a family's correlations (its collapse and non-finite alerts become
warnings in the run's log), and the pooled analysis over every family, once per flow run
after all the families' analyses (the verdicts read it: tasks/verdict.py runs after it).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from ssl_eval.analysis import ALERT_KINDS, analyze_family, analyze_pooled
from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import FamilyAnalysis, PooledAnalysis
from ssl_eval.results.workspace import Workspace


@task(name="analyze-family", task_run_name="analyze {family}")
def analyze(family: str, workspace: Workspace, config: Config) -> FamilyAnalysis:
    analysis = analyze_family(workspace, family, late_fraction=config.analysis.late_fraction,
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
def analyze_all(workspace: Workspace, config: Config) -> PooledAnalysis:
    """Every family's checkpoints together (the records of families not refreshed by this
    run included), stored as the ``_pooled`` correlations record.
    """
    pooled = analyze_pooled(workspace, late_fraction=config.analysis.late_fraction)
    return PooledAnalysis(pooled.families, n_checkpoints=pooled.n_checkpoints)

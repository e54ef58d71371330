"""Prefect task: what a monitor run has to do (new or stale checkpoints, families to refresh)."""

from __future__ import annotations

from prefect import get_run_logger, task

from ssl_eval.common.urls import redact
from ssl_eval.config import Config
from ssl_eval.pipeline.planning import Plan, plan, scan
from ssl_eval.results.workspace import Workspace


@task(name="plan", task_run_name="plan {store}")
def plan_work(store: str, workspace: Workspace, config: Config, tracking_uri: str | None, settle_seconds: float = 2.0) -> Plan:
    """Scan the store and plan the run: what to embed, what to measure, which families to refresh."""
    refs = scan(store, workspace, settle_seconds=settle_seconds)
    work = plan(refs, config, workspace, tracking_uri=tracking_uri)
    for unmatched in config.unmatched_families({ref.family for ref in refs}):
        get_run_logger().warning(unmatched)
    get_run_logger().info(
        "%d checkpoint(s) in %s: %d to embed, %d to measure, families to refresh: %s",
        len(refs), redact(store), sum(i.embed for i in work.items), len(work.items), list(work.families) or "none",
    )
    return work

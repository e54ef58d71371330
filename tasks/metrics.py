"""Prefect tasks computing one metric group, or the probes, for one embedded checkpoint."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from ssl_eval.config import Config
from ssl_eval.evaluation import compute_metric_group, compute_probes
from ssl_eval.workspace import Workspace

EMBEDDED = ("embedded", "cached")


@task(name="metric-group", task_run_name="{group} {embedded[id]}")
def metric_group(embedded: dict[str, Any], group: str, workdir: str, config: Config) -> dict[str, Any]:
    if embedded["status"] not in EMBEDDED:
        return {"id": embedded["id"], "group": group, "status": "skipped"}
    result = compute_metric_group(Workspace.at(workdir), embedded["id"], group, config)
    if result["flags"]:
        get_run_logger().warning("%s %s: flags %s", embedded["id"], group, result["flags"])
    return result


@task(name="probe", task_run_name="probe {embedded[id]}")
def probe(embedded: dict[str, Any], workdir: str, config: Config) -> dict[str, Any]:
    if embedded["status"] not in EMBEDDED:
        return {"id": embedded["id"], "status": "skipped"}
    return compute_probes(Workspace.at(workdir), embedded["id"], config)

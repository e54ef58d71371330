"""Prefect task: one record part (a metric group, or the probes) for one embedded checkpoint."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from ssl_eval.config import Config
from ssl_eval.evaluation import compute_part
from ssl_eval.workspace import Workspace

EMBEDDED = ("embedded", "cached")


@task(name="measure", task_run_name="{part} {embedded[id]}")
def measure(embedded: dict[str, Any], part: str, workdir: str, config: Config) -> dict[str, Any]:
    if embedded["status"] not in EMBEDDED:
        return {"id": embedded["id"], "part": part, "status": "skipped"}
    result = compute_part(Workspace.at(workdir), embedded["id"], part, config)
    if result.get("flags"):
        get_run_logger().warning("%s %s: flags %s", embedded["id"], part, result["flags"])
    return result

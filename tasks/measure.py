"""Prefect task: one record part (a metric group, or the probes) for one embedded checkpoint."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from ssl_eval.config import Config
from ssl_eval.evaluation import compute_part
from ssl_eval.workspace import Workspace

EMBEDDED = ("embedded", "cached")


def _dask_worker() -> str | None:
    """The address of the Dask worker running this task, if it runs on one."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


@task(name="measure", task_run_name="{part} {embedded[id]}")
def measure(embedded: dict[str, Any], part: str, workdir: str, config: Config, store_url: str | None = None) -> dict[str, Any]:
    if embedded["status"] not in EMBEDDED:
        return {"id": embedded["id"], "part": part, "status": "skipped"}
    result = compute_part(Workspace.at(workdir, store_url=store_url), embedded["id"], part, config)
    if result.get("flags"):
        get_run_logger().warning("%s %s: flags %s", embedded["id"], part, result["flags"])
    return {**result, "part": part, "worker": _dask_worker()}

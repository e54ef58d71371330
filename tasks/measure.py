"""Prefect task: the pending record parts (metric groups, probes) of one embedded checkpoint.

One task per checkpoint, not per part: a part takes a second or less on small stores, where
a task run per part cost more in Prefect bookkeeping than the computation (measured by
benchmarks/orchestration.py). Checkpoints still run in parallel across the Dask workers."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from ssl_eval.config import Config
from ssl_eval.evaluation import compute_parts_or_record_failure
from ssl_eval.workspace import Workspace

EMBEDDED = ("embedded", "cached")


def _dask_worker() -> str | None:
    """The address of the Dask worker running this task, if it runs on one."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


@task(name="measure", task_run_name="measure {embedded[id]}")
def measure(
    embedded: dict[str, Any], parts: list[str], workspace: Workspace, config: Config
) -> dict[str, Any]:
    if embedded["status"] not in EMBEDDED:
        return {"id": embedded["id"], "parts": {part: "skipped" for part in parts}}
    results = compute_parts_or_record_failure(workspace, embedded["id"], parts, config)
    error = next((r["error"] for r in results.values() if r["status"] == "failed"), None)
    if error:
        get_run_logger().warning("checkpoint %s failed: %s", embedded["id"], error)
        return {"id": embedded["id"], "parts": {p: "failed" for p in results}, "error": error}
    flags = sorted({flag for r in results.values() for flag in r.get("flags", [])})
    if flags:
        get_run_logger().warning("%s: flags %s", embedded["id"], flags)
    return {"id": embedded["id"], "parts": {p: r["status"] for p, r in results.items()}, "flags": flags, "worker": _dask_worker()}

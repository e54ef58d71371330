"""Prefect tasks that find checkpoints and embed them (tagged ``gpu`` for concurrency limits)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from ssl_eval.config import Config
from ssl_eval.embed import embed_or_record_failure
from ssl_eval.store.checkpoints import CheckpointRef, discover
from ssl_eval.workspace import Workspace


@task(name="discover-checkpoints", task_run_name="discover {store}")
def discover_checkpoints(store: str, settle_seconds: float = 2.0) -> list[CheckpointRef]:
    refs = discover(store, settle_seconds=settle_seconds)
    get_run_logger().info("found %d checkpoint(s) in %s", len(refs), store)
    return refs


@task(name="embed-checkpoint", task_run_name="embed {ref.id}", tags=["gpu"])
def embed(ref: CheckpointRef, workdir: str, config: Config) -> dict[str, Any]:
    result = embed_or_record_failure(ref, config, Workspace.at(workdir))
    if result["status"] == "failed":
        get_run_logger().warning("checkpoint %s failed: %s", ref.id, result["error"])
    return result

"""Prefect tasks that plan a run and embed checkpoints (tagged ``gpu`` for concurrency limits)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from ssl_eval.config import Config
from ssl_eval.embed import embed_or_record_failure
from ssl_eval.planning import Plan, plan
from ssl_eval.store.checkpoints import CheckpointRef, discover
from ssl_eval.store.urls import redact
from ssl_eval.workspace import Workspace


@task(name="plan", task_run_name="plan {store}")
def plan_work(
    store: str, workdir: str, config: Config, tracking_uri: str | None, settle_seconds: float = 2.0, store_url: str | None = None
) -> Plan:
    refs = discover(store, settle_seconds=settle_seconds)
    work = plan(refs, config, Workspace.at(workdir, store_url=store_url), tracking_uri=tracking_uri)
    get_run_logger().info(
        "%d checkpoint(s) in %s: %d to embed, %d to measure, families to refresh: %s",
        len(refs), redact(store), sum(i.embed for i in work.items), len(work.items), list(work.families) or "none",
    )
    return work


@task(name="embed-checkpoint", task_run_name="embed {ref.id}", tags=["gpu"])
def embed(ref: CheckpointRef, workdir: str, config: Config, store_url: str | None = None) -> dict[str, Any]:
    # the core reads local files and fsspec URLs alike, and records any failure
    result = embed_or_record_failure(ref, config, Workspace.at(workdir, store_url=store_url))
    if result["status"] == "failed":
        get_run_logger().warning("checkpoint %s failed: %s", ref.id, result["error"])
    return result


@task(name="embed-outcomes", task_run_name="embedded? ({state})")
def embed_outcomes(
    refs: list[CheckpointRef], workdir: str, config: Config, store_url: str | None, state: str
) -> dict[str, dict[str, Any]]:
    """What the embedding deployment left in the shared store, per checkpoint id: embedded,
    or failed with the recorded error (or the deployment run's final state)."""
    workspace = Workspace.at(workdir, store_url=store_url)
    out = {}
    for ref in refs:
        if workspace.embeddings.is_current(ref.id, fingerprint=ref.fingerprint, embedding_key=config.embedding_key(ref.family)):
            out[ref.id] = {"id": ref.id, "status": "embedded"}
        else:
            failure = workspace.records.get(ref.id, "failure") or {}
            out[ref.id] = {"id": ref.id, "status": "failed", "error": failure.get("error") or f"embedding run ended {state}"}
    return out

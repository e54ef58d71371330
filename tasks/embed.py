"""Prefect tasks: embed one checkpoint (tagged ``gpu`` for concurrency limits), and read what the embedding deployment left in the shared results."""

from __future__ import annotations

from prefect import get_run_logger, task

from ssl_eval.common.safe_text import printable
from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import EmbedOutcome, Status
from ssl_eval.results.parts import FailureRecord, Part
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import CheckpointRef


@task(name="embed-checkpoint", task_run_name="embed {ref.id}", tags=["gpu"])
def embed(ref: CheckpointRef, workspace: Workspace, config: Config) -> EmbedOutcome:
    """Embed one checkpoint (tagged ``gpu`` for concurrency limits); a failure is recorded, logged and returned."""
    # imported here: a flow run that embeds nothing (nothing new, or another pool embeds)
    # never imports torch, and deploying the flows stays fast
    from ssl_eval.pipeline.embedding import embed_or_record_failure

    # the core reads local files and fsspec URLs alike, and records any failure
    outcome = embed_or_record_failure(ref, config, workspace)
    if outcome.status is Status.FAILED:
        get_run_logger().warning("checkpoint %s failed: %s", ref.id, printable(outcome.error))
    return outcome


@task(name="embed-outcomes", task_run_name="embedded? ({state})")
def embed_outcomes(refs: list[CheckpointRef], workspace: Workspace, config: Config, state: str) -> dict[str, EmbedOutcome]:
    """What the embedding deployment left in the shared results, per checkpoint id.

    Each is embedded, or failed with the recorded error (or the deployment run's final state).

    Returns:
        Checkpoint id -> its :class:`~ssl_eval.pipeline.outcomes.EmbedOutcome`.
    """
    out = {}
    for ref in refs:
        if workspace.embeddings.is_current(ref.id, fingerprint=ref.fingerprint, embedding_key=config.embedding_key(ref.family)):
            out[ref.id] = EmbedOutcome(ref.id, Status.EMBEDDED)
        else:
            failure = workspace.records.read(ref.id, Part.FAILURE, FailureRecord)
            out[ref.id] = EmbedOutcome(ref.id, Status.FAILED, error=failure.error if failure else f"embedding run ended {state}")
    return out

"""Prefect tasks: embed one checkpoint (tagged ``gpu`` for concurrency limits), and read what the embedding deployment left in the shared results."""

from __future__ import annotations

from prefect import Task, get_run_logger, task

from ssl_eval.common.safe_text import printable
from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import EmbedOutcome, Status
from ssl_eval.results.parts import FailureRecord, Part
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import CheckpointRef

GPU_TAG = "gpu"


@task(name="embed-checkpoint", task_run_name="embed {ref.id}", tags=[GPU_TAG])
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


def embed_task() -> Task[..., EmbedOutcome]:
    """:func:`embed` as a run submits it: tagged ``gpu`` only where the API holds a limit on that tag.

    Prefect asks the API for a tagged task run's concurrency slots before it starts: one request
    per embed, during which its Dask thread computes nothing (0.5 to 2.4 s when the server is
    busy, benchmarks/end_to_end.py). Without a ``gpu`` limit the answer is always "none", so one
    read per run replaces those requests; with one (``prefect gcl create tag:gpu``, or a v1
    ``prefect concurrency-limit create gpu``), or when the read fails, every embed is tagged and
    held to it as before.

    Returns:
        The task to submit.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(f"tag:{GPU_TAG}")
    except ObjectNotFound:
        return embed.with_options(tags=[t for t in embed.tags if t != GPU_TAG])
    except Exception:  # noqa: BLE001, S110 - any doubt keeps the tag and Prefect's own check
        pass
    return embed  # a limit exists (or the read failed): tagged


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

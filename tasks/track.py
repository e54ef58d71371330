"""Prefect task: mirror one family's records into MLflow (I/O, so it retries)."""

from __future__ import annotations

from prefect import task

from ssl_eval.common.urls import redact_text
from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import MirrorOutcome
from ssl_eval.results.workspace import Workspace


@task(name="track-family", task_run_name="mlflow {family}", retries=1, retry_delay_seconds=2)
def track(family: str, workspace: Workspace, tracking_uri: str, store: str, config: Config | None = None,
          figures: bool = True) -> MirrorOutcome:
    """Mirror one family's records into MLflow.

    ``tracking_uri`` is the redacted form; the credentials are read where they are used.
    ``figures`` False: the PNGs are left to ``ssl-eval ui`` (drawn where someone looks).

    Returns:
        The sync's :class:`~ssl_eval.pipeline.outcomes.MirrorOutcome`.

    Raises:
        RuntimeError: the sync failed (its message redacted).
    """
    from ssl_eval.integrations.mlflow_mirror import sync_family  # mlflow: imported when a family is tracked

    try:
        return sync_family(workspace, family, tracking_uri=tracking_uri, store=store, config=config, figures=figures)
    except Exception as exc:  # noqa: BLE001 - MLflow's messages quote the URI: only a redacted one leaves
        raise RuntimeError(redact_text(f"{type(exc).__name__}: {exc}")) from None

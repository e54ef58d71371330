"""The configuration of this run, read afresh by every run (the monitor flow's first step).

It comes from the store's ssl_eval.toml (or the operator's file) and the explicit overrides. Where
it was read from is noted in the work dir, so that ``ssl-eval report`` can tell whether the stored
answers were computed with the configuration as it is now.

A plain function that the flow calls, logging to the flow run, not a task of its own: the
Prefect server records a task run from the events its client sends, and that insert, a few
hundred milliseconds after this step, collided with the insert of the subflow's tracking task
run that follows it (SQLite "database is locked", PrefectHQ/prefect#18934); the server answered
503 and Prefect's client retried two seconds later, in 6 of 9 cold runs of the small store.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from ssl_eval.common.urls import redact
from ssl_eval.config import Config, load_config
from ssl_eval.results.answers import note_config_source
from ssl_eval.results.workspace import Workspace


def resolve_config(
    store: str, config_file: str | None, overrides: dict[str, Any], allow_modules: list[str], workspace: Workspace | None = None,
) -> Config:
    """Load this run's configuration from the store's file (or ``config_file``) and the overrides; log where from.

    Returns:
        The configuration.
    """
    config = load_config(config_file, store=store, allow_modules=tuple(allow_modules), **overrides)
    get_run_logger().info(
        "configuration: %s + overrides %s", redact(config_file) or f"{redact(store)}/ssl_eval.toml if present", sorted(overrides),
    )
    if workspace is not None:
        note_config_source(workspace.records, store=store, config_file=config_file, overrides=overrides,
                           allow_modules=allow_modules)
    return config

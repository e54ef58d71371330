"""Prefect task: the configuration of this run, from the store's ssl_eval.toml (or the
operator's file) and the explicit overrides, read afresh by every run."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from ssl_eval.common.urls import redact
from ssl_eval.config import Config, load_config


@task(name="resolve-config", task_run_name="config of {store}")
def resolve_config(
    store: str, config_file: str | None, overrides: dict[str, Any], allow_modules: list[str]
) -> Config:
    config = load_config(config_file, store=store, allow_modules=tuple(allow_modules), **overrides)
    get_run_logger().info(
        "configuration: %s + overrides %s", redact(config_file) or f"{redact(store)}/ssl_eval.toml if present", sorted(overrides),
    )
    return config

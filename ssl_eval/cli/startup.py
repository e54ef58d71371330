"""What ``evaluate`` and ``serve`` do before the monitor flow runs.

The configuration checked and turned into the flow's parameters (:func:`flow_parameters`), the
store's layout and the preflight checks (:func:`check_before_start`: exit 2 before anything
starts), the work done while the Prefect server starts (:func:`warm`) and the timing marks
``benchmarks/end_to_end.py`` reads (:func:`mark`).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssl_eval.cli.application import fail, warn
from ssl_eval.cli.workdir import store_location
from ssl_eval.common import strict_json
from ssl_eval.common.urls import redact
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoint_names import CHECKPOINT_SUFFIXES

if TYPE_CHECKING:
    from ssl_eval.config import Config

__all__ = ["check_before_start", "flow_parameters", "mark", "warm"]


def warm(location: str, ws: Workspace, config: Config, settle_seconds: float, *, mlflow_store: bool) -> None:
    """Work of the flow that needs no Prefect server, done while the server starts.

    The store's fingerprints (remembered in the work dir, so the flow's scan only lists the files),
    the fixed augmented views (cached in this process, where the threaded Dask workers read
    them), torch's meta kernels (their first use imports seconds of modules, which the first
    embed tasks would otherwise wait for) and, with ``mlflow_store``, the work dir's MLflow
    database (a new one's tables take MLflow's migrations: seconds the mirror would otherwise
    spend after the answers). Best effort: the flow does each again and reports any error.
    """
    from ssl_eval.pipeline.budget import warm_meta_kernels
    from ssl_eval.pipeline.eval_data import cached_views
    from ssl_eval.pipeline.planning import scan

    def mlflow_tables() -> None:
        if mlflow_store:
            from ssl_eval.integrations.mlflow_mirror import prepare_store

            prepare_store(ws, ws.mlflow_uri)

    for step in (lambda: scan(location, ws, settle_seconds=settle_seconds), lambda: cached_views(config.data, config.limits.data_bytes),
                 warm_meta_kernels, mlflow_tables):
        with contextlib.suppress(Exception):
            step()


def mark(phase: str) -> None:
    """Append when each phase of ``evaluate`` ended to the file named by SSL_EVAL_TIMINGS.

    One JSON line each, wall-clock seconds: benchmarks/end_to_end.py splits the start-up with them.
    """
    if path := os.environ.get("SSL_EVAL_TIMINGS"):
        with open(path, "a", encoding="utf-8") as out:
            out.write(strict_json.encode({"phase": phase, "time": time.time()}) + "\n")


def flow_parameters(
    store: str, ws: Workspace, config_file: Path | None, overrides: dict[str, Any], allow_module: list[str] | None, **more: Any
) -> tuple[str, Config, dict[str, Any]]:
    """(store location, its configuration as of now, the monitor flow's parameters), or a usage error (exit 2) naming what is wrong.

    The configuration is checked here so that a mistake fails at once; the flow resolves it again at every run
    from the same file and overrides.

    Args:
        store: the STORE argument.
        ws: the work dir.
        config_file: --config, or None.
        overrides: dotted configuration keys from the options (None: not given).
        allow_module: --allow-module values, or None.
        **more: further flow parameters (tracking_uri, settle_seconds).

    Returns:
        (store location, configuration, flow parameters).
    """
    from ssl_eval.config import load_config

    given = {key: value for key, value in overrides.items() if value is not None}
    file = str(config_file.resolve()) if config_file is not None else None
    try:
        location = store_location(store)
        config = load_config(file, store=location, allow_modules=tuple(allow_module or ()), **given)
    except (ValueError, FileNotFoundError, OSError) as exc:
        fail(redact(str(exc)))
    return location, config, {
        "workdir": str(ws.root), "results_url": ws.results_url, "overrides": given, "config_file": file,
        "allow_modules": list(allow_module or ()), **more,
    }


def check_before_start(location: str, config: Config, *, watching: bool) -> None:
    """Check the store's layout and the configuration before Prefect or Dask start.

    An error exits 2 with the fix; what only looks wrong is a warning.
    """
    from ssl_eval.common.urls import is_url
    from ssl_eval.pipeline.preflight import preflight

    if not is_url(location):
        from ssl_eval.sources.layout import EXPECTED, family_ids, layout_problems

        readable, problems = layout_problems(location)
        for problem in problems:
            warn(problem)
        if not readable and not watching:
            fail(f"found no checkpoint files in {location}; the layout is {EXPECTED} "
                 f"(names ending in {', '.join(CHECKPOINT_SUFFIXES)}).")
        if not readable:
            warn(f"no checkpoint files in {location} yet; watching for {EXPECTED}.")
        for unmatched in config.unmatched_families(family_ids(location)):
            warn(unmatched)
    try:
        warnings = preflight(config)
    except (ValueError, FileNotFoundError, OSError) as exc:
        fail(f"{redact(str(exc))}\nNothing was started; fix the configuration (--dataset, --data-root, ssl_eval.toml) and rerun.")
    for warning in warnings:
        warn(warning)

"""Prefect task: the pending record parts (metric groups, probes) of one embedded checkpoint.

One task per checkpoint, not per part: a part takes a second or less on small stores, where
a task run per part cost more in Prefect bookkeeping than the computation (measured by
benchmarks/orchestration.py). Checkpoints still run in parallel across the Dask workers.
"""

from __future__ import annotations

import dataclasses

from prefect import get_run_logger, task

from ssl_eval.common.safe_text import printable
from ssl_eval.common.threads import one_openmp_thread_in_task
from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import EmbedOutcome, MeasureOutcome
from ssl_eval.results.workspace import Workspace


def _dask_worker() -> str | None:
    """The address of the Dask worker running this task, if it runs on one."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


@task(name="measure", task_run_name="measure {embedded.id}")
def measure(embedded: EmbedOutcome, parts: list[str], workspace: Workspace, config: Config) -> MeasureOutcome:
    """Compute one embedded checkpoint's pending record parts; failures and flags are logged as warnings."""
    from ssl_eval.pipeline.evaluation import measure_embedded  # torch: imported when a checkpoint is measured

    with one_openmp_thread_in_task():  # scikit-learn's loops: one thread each beside the Dask threads
        outcome = measure_embedded(workspace, embedded, parts, config)
    if not embedded.ready:
        return outcome  # its embedding failed: reported by the embed step
    if outcome.error:
        get_run_logger().warning("checkpoint %s failed: %s", embedded.id, printable(outcome.error))
    elif outcome.flags:
        get_run_logger().warning("%s: flags %s", embedded.id, list(outcome.flags))
    return dataclasses.replace(outcome, worker=_dask_worker())

"""The monitor flow's Dask task runner.

The local cluster listens on the loopback interface only, and the threaded runner hands tasks
their settings as they are.
"""

from __future__ import annotations

import psutil
import pytest
from distributed import LocalCluster
from prefect.context import SettingsContext
from prefect_dask import DaskTaskRunner

from flows.dask_runner import dask_runner


def test_local_cluster_binds_to_loopback_only():
    runner = dask_runner()
    with LocalCluster(**runner.cluster_kwargs) as cluster:
        listening = [
            c.laddr for c in psutil.Process().net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
        ]
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening


def test_existing_cluster_address_is_used_as_given():
    runner = dask_runner("tcp://127.0.0.1:8786")
    assert runner.address == "tcp://127.0.0.1:8786" and not runner.cluster_kwargs


# ---------------------------------------------------------------- the threaded runner's hand-over


def _seen_by_task() -> tuple[str | None, int]:
    """(the API URL, the default retries) as a task on the runner sees them."""
    from prefect.context import SettingsContext

    settings = SettingsContext.get().settings
    return settings.api.url, settings.tasks.default_retries


def _run_two_tasks(runner, monkeypatch) -> tuple[list[tuple[str | None, int]], dict, list[str], int]:
    """Run a flow on ``runner`` that submits the same task twice, under a changed setting.

    Returns:
        (what each task saw, the flow's settings contexts, the Dask keys, Settings objects built while the tasks ran).
    """
    from prefect import flow, task
    from prefect.context import SettingsContext
    from prefect.settings import PREFECT_TASKS_DEFAULT_RETRIES, Settings, temporary_settings

    seen = task(_seen_by_task)
    built = []
    real_init = Settings.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        real_init(self, *args, **kwargs)

    @flow(task_runner=runner)
    def two_tasks():
        with temporary_settings({PREFECT_TASKS_DEFAULT_RETRIES: 3}):
            current = SettingsContext.get()
            monkeypatch.setattr(Settings, "__init__", counting_init)
            futures = [seen.submit(), seen.submit()]  # the same task, the same (no) arguments
            results = [f.result() for f in futures]
            monkeypatch.setattr(Settings, "__init__", real_init)
            after = SettingsContext.get()
        return results, {"current": current, "after": after}, [f.wrapped_future.key for f in futures]

    results, contexts, keys = two_tasks()
    return results, contexts, keys, len(built)


@pytest.mark.usefixtures("prefect_harness")
def test_threaded_runner_hands_tasks_the_submitting_thread_settings_without_rebuilding_them(monkeypatch):
    results, contexts, keys, built = _run_two_tasks(dask_runner(), monkeypatch)
    # what Prefect's own dict hand-over gives a task: the values in force at submit time
    assert results == [(contexts["current"].settings.api.url, 3)] * 2
    assert results[0][0] and results[0][0].startswith("http://127.0.0.1:")  # the harness's server
    # handed over, not rebuilt from a dump
    assert built == 0
    # the submitting thread's own context is untouched by the hand-over
    assert contexts["after"] is contexts["current"] and type(contexts["after"]) is SettingsContext
    # the same task with the same arguments is still two task runs under two Dask keys
    assert len(set(keys)) == 2


@pytest.mark.usefixtures("prefect_harness")
def test_the_count_can_fail_prefects_own_runner_rebuilds_settings_in_each_task_run(monkeypatch):
    local = dask_runner()
    prefects = DaskTaskRunner(cluster_class=local.cluster_class, cluster_kwargs=local.cluster_kwargs)
    results, contexts, _, built = _run_two_tasks(prefects, monkeypatch)
    assert built >= 2
    assert results == [(contexts["current"].settings.api.url, 3)] * 2

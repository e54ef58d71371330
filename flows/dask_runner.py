"""The Dask task runner the monitor flow runs its tasks on.

Without an address it is a threaded ``LocalCluster`` in this process (worker processes would
each start their own Prefect server), on the loopback interface only; with one, the existing
cluster at that address.

Prefect's Dask runner hands each task its context as a dict: on every submit it dumps the
whole settings model (about 20 ms of the flow's thread, 40 ms while the workers run), and the
worker thread builds a new settings model from that dict (pydantic-settings reads its
sources again: about 45 ms, holding the interpreter lock the other worker needs). On a
threaded cluster, where the workers share this process's settings, that was nearly a third of the
small store's flow (benchmarks/end_to_end.py --preset small). :class:`ThreadedDaskTaskRunner`
hands over the settings objects themselves; the worker thread enters them without rebuilding.
A cluster at an address keeps Prefect's dict: its workers may run another platform.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from prefect.context import SettingsContext
from prefect_dask import DaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture

__all__ = ["ThreadedDaskTaskRunner", "dask_runner"]


class _SettingsAsIs(SettingsContext):
    """The current settings, serialised as the objects they are rather than a dict to rebuild.

    It replaces nothing: entered for one submit on the submitting thread (a context variable,
    so no other thread sees it), it changes only what Prefect's ``serialize_context`` reads.
    """

    def serialize(self, include_secrets: bool = True) -> dict[str, Any]:
        if not include_secrets:  # a dump meant to leave the process: Prefect's, secrets masked
            return super().serialize(include_secrets=False)
        return {"profile": self.profile, "settings": self.settings}


class ThreadedDaskTaskRunner(DaskTaskRunner):
    """Prefect's :class:`DaskTaskRunner` for a cluster whose workers are threads of this process."""

    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None, dependencies: Any = None) -> PrefectDaskFuture[Any]:
        """Submit as :meth:`DaskTaskRunner.submit` does, with two of its costs left out.

        The settings are handed over as they are (see the module's docstring), and the Dask key
        is not a hash of the arguments (``pure=False``): Prefect gives every submit a new task
        run id anyway, so no two keys were ever equal, and hashing the task, its parameters and
        its context took about 18 ms a submit on the flow's thread.

        Returns:
            Prefect's future of the task run.

        Raises:
            RuntimeError: the runner is not started (as Prefect's).
        """
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        current = SettingsContext.get()
        as_is = _SettingsAsIs(profile=current.profile, settings=current.settings) if current else contextlib.nullcontext()
        with as_is:
            future = self.client.submit(
                task, parameters=self._optimize_futures(parameters), wait_for=self._optimize_futures(wait_for) if wait_for else None,
                dependencies=dependencies, return_type="state", pure=False,
            )
        return PrefectDaskFuture(wrapped_future=future, task_run_id=future.task_run_id)


def dask_runner(address: str | None = None) -> DaskTaskRunner:
    """An existing Dask cluster when ``address`` is given, else a threaded LocalCluster.

    Returns:
        The task runner.
    """
    if address:
        return DaskTaskRunner(address=address)
    return ThreadedDaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "processes": False,
            "n_workers": 1,
            "threads_per_worker": os.cpu_count() or 2,
            # Even a threaded cluster listens (scheduler, worker, HTTP status): keep all of it
            # on the loopback interface, on free ports.
            "protocol": "tcp://",
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",
        },
    )

"""The monitor flow: plan -> embed -> measure (metric groups, probes) -> analyse -> MLflow.

Run ad hoc (``ssl-eval evaluate``) or on a schedule (``ssl-eval serve``, deployments/).
Flows only compose: the plan says what is new or stale, and only that is submitted, so a
rerun with nothing new runs one task. Each checkpoint's measurements start as soon as it
is embedded; a family is analysed once all its checkpoints are measured.
"""


import logging
import os
from collections import defaultdict
from typing import Any

from prefect import flow
from prefect_dask import DaskTaskRunner

from ssl_eval.config import Config
from ssl_eval.workspace import Workspace
from tasks.analyze import analyze
from tasks.embed import embed, plan_work
from tasks.measure import measure
from tasks.track import track


# Dask's INFO lines (cluster start and stop) drown the flow's own log.
logging.getLogger("distributed").setLevel(logging.WARNING)


def dask_runner(address: str | None = None) -> DaskTaskRunner:
    """An existing Dask cluster when ``address`` is given, else a threaded LocalCluster
    (threads: worker processes would each start their own Prefect server)."""
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
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


def _error_of(future) -> str | None:
    """Wait for ``future``; the error message if it failed, else None."""
    outcome = future.result(raise_on_failure=False)
    return str(outcome) if isinstance(outcome, BaseException) else None


@flow(name="monitor-store", flow_run_name="monitor {store}", task_runner=dask_runner())
def monitor_store(
    store: str,
    workdir: str,
    config: Config,
    tracking_uri: str | None = None,
    settle_seconds: float = 2.0,
    track_mlflow: bool = True,
) -> dict[str, Any]:
    """``tracking_uri`` None means the work dir's own sqlite MLflow store."""
    tracking_uri = (tracking_uri or Workspace.at(workdir).mlflow_uri) if track_mlflow else None
    work = plan_work(store, workdir, config, tracking_uri, settle_seconds)
    embedded, measured = [], defaultdict(list)
    for item in work.items:
        emb = embed.submit(item.ref, workdir, config) if item.embed else {"id": item.ref.id, "status": "cached"}
        embedded.append(emb)
        measured[item.ref.family] += [measure.submit(emb, part, workdir, config) for part in item.parts]
    analyses = {f: analyze.submit(f, workdir, config, wait_for=measured[f]) for f in work.families}
    tracked = {f: track.submit(f, workdir, tracking_uri, store, wait_for=[a]) for f, a in analyses.items() if tracking_uri}
    outcomes = [e if isinstance(e, dict) else e.result() for e in embedded]
    for future in [f for futures in measured.values() for f in futures]:
        future.result()
    # MLflow is a mirror: when it is down the results stay in the records, the run still
    # completes, and the next run syncs what is missing.
    tracking_errors = {family: error for family, t in tracked.items() if (error := _error_of(t))}
    return {
        "checkpoints_new_or_stale": len(work.items),
        "families": list(work.families),
        "embedded": [o["id"] for o in outcomes if o["status"] == "embedded"],
        "failed": {o["id"]: o["error"] for o in outcomes if o["status"] == "failed"},
        "known_failed": list(work.skipped_failed),
        "analyses": {family: a.result() for family, a in analyses.items()},
        "tracking_uri": tracking_uri,
        "tracking_errors": tracking_errors,
    }


def run_monitor(
    store: str, workdir: str, config: Config, *, dask_address: str | None = None, tracking_uri: str | None = None,
    settle_seconds: float = 2.0, track_mlflow: bool = True,
) -> dict[str, Any]:
    """One ad-hoc run of the monitor flow on the given Dask cluster (or a local one)."""
    return monitor_store.with_options(task_runner=dask_runner(dask_address))(
        store=store, workdir=workdir, config=config, tracking_uri=tracking_uri, settle_seconds=settle_seconds,
        track_mlflow=track_mlflow,
    )

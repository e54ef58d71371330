"""The monitor flow: plan -> embed -> measure (metric groups, probes) -> analyse -> MLflow.

Run ad hoc (``ssl-eval evaluate``) or on a schedule (``ssl-eval serve``, deployments/).
Flows only compose: the plan says what is new or stale, and only that is submitted, so a
rerun with nothing new runs one task. Each checkpoint's measurements start as soon as it
is embedded; a family is analysed once all its checkpoints are measured.

With ``embed_deployment`` (e.g. ``embed-checkpoints/gpu``) the new checkpoints are embedded
by that deployment's flow on its own work pool (GPU machines), and this flow waits for it;
the metric tasks still run on this flow's Dask cluster. ``results_url`` puts the embeddings
and records on a shared fsspec URL that both reach. The deployment entrypoint is
:func:`monitor`, which picks the Dask cluster at run time (parameter, ``[dask] address``).
"""


import logging
import os
from collections import defaultdict
from typing import Any

import dask
from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from prefect_dask import DaskTaskRunner

from flows import progress
from ssl_eval.config import Config
from ssl_eval.storage.urls import install_log_redaction
from ssl_eval.workspace import RESULTS_URL_ENV, Workspace
from tasks.analyze import analyze
from tasks.embed_checkpoint import embed, embed_outcomes
from tasks.plan import plan_work
from tasks.measure import measure
from tasks.track import track


# Dask's INFO lines (cluster start and stop) drown the flow's own log.
logging.getLogger("distributed").setLevel(logging.WARNING)
# Dask's statistical profiler samples every thread's frames (sys._current_frames) every
# 10 ms; on CPython 3.11 that sampling can crash a process whose worker threads run torch
# (a segfault seen in a threaded LocalCluster here, the class of crash other sampling
# profilers hit). ssl-eval never reads those profiles: switch it off.
dask.config.set({"distributed.worker.profile.enabled": False})
# No credential reaches a log record of a flow run, in the CLI's process or a served child.
install_log_redaction()


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
    workdir: str | None,
    config: Config,
    tracking_uri: str | None = None,
    settle_seconds: float = 2.0,
    track_mlflow: bool = True,
    results_url: str | None = None,
    embed_deployment: str | None = None,
) -> dict[str, Any]:
    """``tracking_uri`` None means the work dir's own sqlite MLflow store."""
    results_url = results_url or None
    tracking_uri = (tracking_uri or Workspace.at(workdir, results_url=results_url).mlflow_uri) if track_mlflow else None
    work = plan_work(store, workdir, config, tracking_uri, settle_seconds, results_url)
    remote: dict[str, dict] = {}
    to_embed = [item.ref for item in work.items if item.embed]
    progress.planned(embed=len(to_embed), measure=len(work.items))
    if embed_deployment and to_embed:
        run = run_deployment(
            embed_deployment, timeout=None, flow_run_name=f"embed {len(to_embed)} checkpoint(s)",
            parameters={"refs": to_embed, "workdir": workdir, "config": config, "results_url": results_url},
        )
        remote = embed_outcomes(to_embed, workdir, config, results_url, run.state.name if run.state else "unknown")
    embedded, measured = [], defaultdict(list)
    for item in work.items:
        if not item.embed:
            emb = {"id": item.ref.id, "status": "cached"}
        elif item.ref.id in remote:
            emb = remote[item.ref.id]
            progress.finished("embedded")
        else:
            emb = embed.submit(item.ref, workdir, config, results_url)
            progress.when_done(emb, "embedded")
        embedded.append(emb)
        measured[item.ref.family].append(measure.submit(emb, list(item.parts), workdir, config, results_url))
        progress.when_done(measured[item.ref.family][-1], "measured")
    analyses = {f: analyze.submit(f, workdir, config, wait_for=measured[f]) for f in work.families}
    tracked = {
        f: track.submit(f, workdir, tracking_uri, store, results_url, config, wait_for=[a]) for f, a in analyses.items() if tracking_uri
    }
    outcomes = [e if isinstance(e, dict) else e.result() for e in embedded]
    measures = [future.result() for futures in measured.values() for future in futures]
    workers = sorted({m["worker"] for m in measures if m.get("worker")})
    get_run_logger().info("metric tasks ran on Dask worker(s): %s", ", ".join(workers) or "none")
    # MLflow is a mirror: when it is down the results stay in the records, the run still
    # completes, and the next run syncs what is missing.
    tracking_errors = {family: error for family, t in tracked.items() if (error := _error_of(t))}
    return {
        "checkpoints_new_or_stale": len(work.items),
        "families": list(work.families),
        "embedded": [o["id"] for o in outcomes if o["status"] == "embedded"],
        "failed": {o["id"]: o["error"] for o in [*outcomes, *measures] if o.get("status") == "failed" or o.get("error")},
        "known_failed": list(work.skipped_failed),
        "analyses": {family: a.result() for family, a in analyses.items()},
        "tracking_uri": tracking_uri,
        "tracking_errors": tracking_errors,
        "dask_workers": workers,
    }


def run_monitor(
    store: str, workdir: str, config: Config, *, dask_address: str | None = None, tracking_uri: str | None = None,
    settle_seconds: float = 2.0, track_mlflow: bool = True, results_url: str | None = None,
    embed_deployment: str | None = None,
) -> dict[str, Any]:
    """One ad-hoc run of the monitor flow on the given Dask cluster (else the config's
    ``[dask] address``, else a local one)."""
    address = dask_address or config.dask.address
    if results_url:  # the analysis task finds the shared results through the environment (in-process workers)
        os.environ[RESULTS_URL_ENV] = results_url
    return monitor_store.with_options(task_runner=dask_runner(address))(
        store=store, workdir=workdir, config=config, tracking_uri=tracking_uri, settle_seconds=settle_seconds,
        track_mlflow=track_mlflow, results_url=results_url, embed_deployment=embed_deployment,
    )


@flow(name="monitor", flow_run_name="monitor {store}")
def monitor(
    store: str,
    workdir: str | None,
    config: Config,
    tracking_uri: str | None = None,
    settle_seconds: float = 2.0,
    results_url: str | None = None,
    dask_address: str | None = None,
    embed_deployment: str | None = None,
) -> dict[str, Any]:
    """The deployment entrypoint: the monitor flow on the Dask cluster chosen at run time
    (``dask_address``, else ``[dask] address``, else a LocalCluster). Empty strings (unset
    template variables in prefect.yaml) mean "not given"."""
    return run_monitor(
        store, workdir or None, config, dask_address=dask_address or None, tracking_uri=tracking_uri or None,
        settle_seconds=settle_seconds, results_url=results_url or None, embed_deployment=embed_deployment or None,
    )

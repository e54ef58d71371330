"""The monitor flow: plan, embed, measure, analyse each family, the pooled analysis, each family's verdict, MLflow.

Measuring covers the metric groups and the probes.

Run ad hoc (``ssl-eval evaluate``) or on a schedule (``ssl-eval serve``, deployments/).
Flows only compose: the plan says what is new or stale, and only that is submitted, so a
rerun with nothing new runs one task. Each checkpoint's measurements start as soon as it
is embedded; a family is analysed once all its checkpoints are measured; the pooled
analysis runs once, after every refreshed family's analysis, and the verdicts after it.

Every entry point (``ssl-eval evaluate``, ``ssl-eval serve``, the work-pool deployment, a
direct call of :func:`monitor` with only ``store`` and ``workdir``) runs :func:`monitor`. It
resolves the configuration once per run, from the store's ``ssl_eval.toml`` (or
``config_file``) plus the explicit ``overrides``, so an edit to the file is applied by the
next scheduled run; then it runs :func:`monitor_store` on the Dask cluster chosen by the
``dask_address`` parameter, else ``[dask] address``, else a local one. Tasks receive the
resolved :class:`~ssl_eval.config.Config` and one frozen :class:`~ssl_eval.results.workspace.Workspace`
(work dir, results URL) as parameters: none reads the process environment to find where
to read or write.

With ``embed_deployment`` (e.g. ``embed-checkpoints/gpu``) the new checkpoints are embedded
by that deployment's flow on its own work pool (GPU machines), and this flow waits for it;
the metric tasks still run on this flow's Dask cluster. ``results_url`` puts the embeddings
and records on a shared fsspec URL that both reach.
"""


import logging
from collections import defaultdict
from typing import Any

import dask
from prefect import Task, allow_failure, flow, get_run_logger
from prefect.deployments import run_deployment
from prefect.futures import PrefectFuture

from flows import progress
from flows.dask_runner import dask_runner
from ssl_eval.common.threads import one_thread_per_task
from ssl_eval.common.urls import install_log_redaction
from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import EmbedOutcome, MeasureOutcome, MonitorSummary, Status
from ssl_eval.pipeline.planning import Plan
from ssl_eval.results.workspace import Workspace
from tasks.analyze import analyze_family, analyze_pooled
from tasks.embed import embed_outcomes, embed_task
from tasks.measure import measure
from tasks.plan import plan_work
from tasks.resolve_config import resolve_config
from tasks.track import track
from tasks.verdict import verdict

# Dask's INFO lines (cluster start and stop) drown the flow's own log.
logging.getLogger("distributed").setLevel(logging.WARNING)
# Dask's statistical profiler samples every thread's frames (sys._current_frames) every
# 10 ms; on CPython 3.11 that sampling can crash a process whose worker threads run torch
# (a segfault seen in a threaded LocalCluster here, the class of crash other sampling
# profilers hit). ssl-eval never reads those profiles: switch it off.
dask.config.set({"distributed.worker.profile.enabled": False})
# No credential reaches a log record of a flow run, in the CLI's process or a served child.
install_log_redaction()


def _error_of(future: PrefectFuture[Any]) -> str | None:
    """Wait for ``future``; the error message if it failed, else None."""
    outcome = future.result(raise_on_failure=False)
    return str(outcome) if isinstance(outcome, BaseException) else None


def _embed_and_measure(work: Plan, remote: dict[str, EmbedOutcome], workspace: Workspace, config: Config
                       ) -> tuple[list[PrefectFuture[EmbedOutcome]], dict[str, list[PrefectFuture[MeasureOutcome]]]]:
    """Submit each planned checkpoint's embed and measure tasks.

    Each checkpoint's measure task starts once its embedding is there: one it does not need
    (cached), one the embedding deployment made (remote), or one this flow embeds (a future).

    Returns:
        (the embed futures, each family's measure futures).
    """
    embed: Task[..., EmbedOutcome] | None = None  # read when the first checkpoint is embedded here
    embedding: list[PrefectFuture[EmbedOutcome]] = []
    measured: dict[str, list[PrefectFuture[MeasureOutcome]]] = defaultdict(list)
    for item in work.items:
        emb: EmbedOutcome | PrefectFuture[EmbedOutcome]
        if not item.embed:
            emb = EmbedOutcome(item.ref.id, Status.CACHED)
        elif item.ref.id in remote:
            emb = remote[item.ref.id]
            progress.finished("embedded")
        else:
            embed = embed or embed_task()
            emb = embed.submit(item.ref, workspace, config)
            progress.when_done(emb, "embedded")
            embedding.append(emb)
        measured[item.ref.family].append(measure.submit(emb, list(item.parts), workspace, config))
        progress.when_done(measured[item.ref.family][-1], "measured")
    return embedding, measured


@flow(name="monitor-store", flow_run_name="monitor {store}", task_runner=dask_runner())
def monitor_store(
    store: str,
    workspace: Workspace,
    config: Config,
    tracking_uri: str | None = None,
    settle_seconds: float = 2.0,
    embed_deployment: str | None = None,
    mlflow_figures: bool = True,
) -> MonitorSummary:
    """One evaluation pass with a resolved ``config``; ``tracking_uri`` None: no MLflow mirror."""
    work = plan_work(store, workspace, config, tracking_uri, settle_seconds)
    remote: dict[str, EmbedOutcome] = {}
    to_embed = [item.ref for item in work.items if item.embed]
    progress.planned(embed=len(to_embed), measure=len(work.items))
    if embed_deployment and to_embed:
        run = run_deployment(
            embed_deployment, timeout=None, flow_run_name=f"embed {len(to_embed)} checkpoint(s)",
            parameters={"refs": to_embed, "workdir": str(workspace.root), "config": config, "results_url": workspace.results_url},
        )
        remote = embed_outcomes(to_embed, workspace, config, run.state.name if run.state else "unknown")
    embedding, measured = _embed_and_measure(work, remote, workspace, config)
    # A family is analysed once all its checkpoints are measured; the pooled analysis (from the
    # checkpoint records, not the families' analyses) once every family's analysis is done; a
    # verdict after its family's analysis and the pooled one (a family without labels borrows
    # from the others and from the pooled analysis); a family's MLflow mirror after its
    # verdict. One family's failed analysis holds back only its own verdict and mirror.
    analyses = {f: analyze_family.submit(f, workspace, config, wait_for=measured[f]) for f in work.families}
    pooled = analyze_pooled.submit(workspace, config, wait_for=[allow_failure(a) for a in analyses.values()]) if analyses else None
    verdicts = {f: verdict.submit(f, workspace, config, wait_for=[a, pooled]) for f, a in analyses.items()}
    tracked = {
        f: track.submit(f, workspace, tracking_uri, store, config, mlflow_figures, wait_for=[v])
        for f, v in verdicts.items() if tracking_uri
    }
    for future in embedding:
        future.result()  # an infrastructure failure while embedding stops the run with its own error
    # every checkpoint's account: its embedding outcome travels in its measure outcome
    measures = [future.result() for futures in measured.values() for future in futures]
    summary = MonitorSummary.of(
        work, measures, analyses={f: a.result() for f, a in analyses.items()}, pooled=pooled.result() if pooled else None,
        verdicts={f: v.result() for f, v in verdicts.items()}, tracking_uri=tracking_uri,
        # MLflow is a mirror: when it is down the results stay in the records, the run still
        # completes, and the next run syncs what is missing.
        tracking_errors={family: error for family, t in tracked.items() if (error := _error_of(t))},
    )
    get_run_logger().info("metric tasks ran on Dask worker(s): %s", ", ".join(summary.dask_workers) or "none")
    return summary


@flow(name="monitor", flow_run_name="monitor {store}")
def monitor(
    store: str,
    workdir: str | None = None,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
    allow_modules: list[str] | None = None,
    tracking_uri: str | None = None,
    track_mlflow: bool = True,
    settle_seconds: float = 2.0,
    results_url: str | None = None,
    dask_address: str | None = None,
    embed_deployment: str | None = None,
    mlflow_figures: bool = True,
) -> MonitorSummary:
    """Every entry point's flow: resolve the configuration for this run, then evaluate.

    ``overrides`` are dotted keys (``{"data.name": "digits"}``) applied over the store's
    ``ssl_eval.toml`` (or ``config_file``); ``tracking_uri`` None means the work dir's own
    sqlite MLflow store (``track_mlflow=False``: none). ``mlflow_figures=False`` leaves the
    MLflow figures to ``ssl-eval ui`` (``ssl-eval evaluate`` into the work dir's own store: the
    user waits for the answers, not for PNGs nobody has opened yet). Empty strings (unset
    template variables in prefect.yaml) mean "not given".

    Returns:
        The run's :class:`~ssl_eval.pipeline.outcomes.MonitorSummary`.
    """
    workspace = Workspace.at(workdir or None, results_url=results_url or None)
    config = resolve_config(store, config_file or None, dict(overrides or {}), list(allow_modules or ()), workspace)
    tracking = (tracking_uri or workspace.mlflow_uri) if track_mlflow else None
    address = dask_address or config.dask.address
    # the threaded local cluster runs one task per core: one BLAS/torch thread each (ssl_eval/common/threads.py)
    with one_thread_per_task(active=not address):
        return monitor_store.with_options(task_runner=dask_runner(address))(
            store=store, workspace=workspace, config=config, tracking_uri=tracking,
            settle_seconds=settle_seconds, embed_deployment=embed_deployment or None, mlflow_figures=mlflow_figures,
        )


def run_monitor(store: str, workdir: str | None = None, **options: Any) -> MonitorSummary:
    """One ad-hoc run of :func:`monitor`, the same flow the deployments run.

    ``options`` are its parameters (``overrides``, ``config_file``, ``dask_address``, ...).

    Returns:
        The run's summary.
    """
    return monitor(store=store, workdir=workdir, **options)

"""``ssl-eval evaluate`` and ``ssl-eval serve``: the commands that run the monitor flow.

They run it once or on a schedule, with the checks that come before anything starts.
"""

from __future__ import annotations

import contextlib
import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ssl_eval.cli.application import EXIT_INTERRUPTED, EXIT_NOTHING_EVALUATED, EXIT_SOME_FAILED, command
from ssl_eval.cli.options import (
    AllowModuleOption,
    ConfigOption,
    DaskOption,
    DataBudgetOption,
    DataRootOption,
    DatasetOption,
    MemoryOption,
    MlflowOption,
    NEvalOption,
    NProbeTestOption,
    NProbeTrainOption,
    ResultsUrlOption,
    SettleOption,
    StoreArgument,
    WorkdirOption,
)
from ssl_eval.cli.startup import check_before_start, flow_parameters, mark, warm
from ssl_eval.cli.workdir import check_writable, hold_for_serve, note_serving, open_workspace
from ssl_eval.common.names import display_id, display_name
from ssl_eval.common.safe_text import printable
from ssl_eval.common.urls import hold_credentials, redact
from ssl_eval.results.workspace import Workspace

if TYPE_CHECKING:
    from ssl_eval.config import Config
    from ssl_eval.pipeline.outcomes import MonitorSummary

__all__ = ["evaluate", "serve"]


@command()
def evaluate(
    store: str = StoreArgument,
    workdir: Path | None = WorkdirOption,
    results_url: str | None = ResultsUrlOption,
    dataset: str | None = DatasetOption,
    data_root: str | None = DataRootOption,
    config_file: Path | None = ConfigOption,
    dask_address: str | None = DaskOption,
    mlflow_uri: str | None = MlflowOption,
    n_eval: int | None = NEvalOption,
    n_probe_train: int | None = NProbeTrainOption,
    n_probe_test: int | None = NProbeTestOption,
    settle_seconds: float = SettleOption,
    allow_module: list[str] | None = AllowModuleOption,
    memory_gb: float | None = MemoryOption,
    data_gb: float | None = DataBudgetOption,
    quiet: bool = typer.Option(False, "--quiet", help="Do not print the report table at the end."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v",
        help="Print Prefect's, Dask's and MLflow's full logs instead of the progress display (the Prefect UI keeps them either way).",
    ),
) -> None:
    """Evaluate every new or changed checkpoint of STORE once (an ad-hoc Prefect flow run), then print the report.

    Example: ssl-eval evaluate ./checkpoints --dataset mnist --workdir ./.ssl_eval
    """
    mark("started")  # the interpreter, this module and its imports are loaded
    # No cyclic garbage collection while the command imports its stack (configuration, torch,
    # prefect, mlflow, dask): each full collection rescans every object loaded so far, seven of them
    # 1.3 s of this thread before the server is up. _run_once freezes what the start-up loaded and
    # turns collection back on before the flow runs; leaving the block (any exit) does too.
    gc.disable()
    try:
        ws = open_workspace(workdir, results_url, writing=True)
        note_serving(ws)  # a serve of this work dir is no reason to refuse (ssl_eval/results/serve_lock.py)
        location, config, parameters = flow_parameters(store, ws, config_file, {
            "data.name": dataset, "data.root": data_root, "data.n_eval": n_eval,
            "data.n_probe_train": n_probe_train, "data.n_probe_test": n_probe_test, "dask.address": dask_address,
            "limits.memory_gb": memory_gb, "limits.data_gb": data_gb,
        }, allow_module, tracking_uri=hold_credentials(mlflow_uri or ws.mlflow_uri), settle_seconds=settle_seconds,
            # the work dir's own MLflow store is looked at through `ssl-eval ui`, which draws the figures
            # as it opens: the run ends once the answers are logged (a tracking server keeps them in the run)
            mlflow_figures=mlflow_uri is not None)
        check_before_start(location, config, watching=False)
        mark("checked")  # configuration, store layout, data set loaded
        check_writable(ws)
        summary = _run_once(location, ws, config, parameters, settle_seconds=settle_seconds, verbose=verbose)
        _print_summary(summary, ws, quiet=quiet)
        mark("reported")
        if summary.failed:
            raise typer.Exit(EXIT_SOME_FAILED if summary.embedded else EXIT_NOTHING_EVALUATED)
    finally:
        gc.enable()


def _run_once(location: str, ws: Workspace, config: Config, parameters: dict[str, Any], *, settle_seconds: float,
              verbose: bool) -> MonitorSummary:
    """Run the monitor flow once on a temporary Prefect server, with the progress display unless ``verbose``.

    The server is launched first, so that it starts while this process imports the flows and
    scans the store.

    Returns:
        The run's summary.

    Raises:
        typer.Exit: 1 when the run's infrastructure failed, 130 on Ctrl-C.
    """
    if not verbose:  # read when prefect and mlflow are first imported (just below)
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "ERROR")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from deployments.lifetime import start_reaper
    from flows.progress import ProgressDisplay, listening
    from ssl_eval.common.errors import InfrastructureError

    start_reaper()  # the temporary Prefect server and Dask never outlive this command, even a kill -9
    display = contextlib.nullcontext() if verbose else ProgressDisplay()
    try:
        with display as shown, (listening(shown) if shown else contextlib.nullcontext()):
            from deployments.server import temporary_api

            with temporary_api(ws.prefect_home / "server.log") as server_ready:
                mark("server launched")
                from flows.monitor import run_monitor

                mark("flows imported")
                # mlflow_figures is False exactly when the run tracks into the work dir's own store
                warm(location, ws, config, settle_seconds, mlflow_store=not parameters["mlflow_figures"])
                gc.freeze()  # what the start-up loaded lives as long as the process: no collection rescans it
                gc.enable()
                mark("warmed")
                try:
                    server_ready()
                except (RuntimeError, TimeoutError) as exc:
                    raise InfrastructureError(str(exc)) from None
                mark("server ready")
                summary = run_monitor(location, **parameters)
        mark("flow finished")
    except InfrastructureError as exc:
        typer.secho(f"error: the run stopped: {printable(redact(str(exc)), newlines=True)}", fg="red", err=True)
        raise typer.Exit(EXIT_NOTHING_EVALUATED) from None
    except KeyboardInterrupt:
        typer.secho("interrupted: finished checkpoints are kept; the next run continues with the rest.", fg="yellow", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return summary


def _print_summary(summary: MonitorSummary, ws: Workspace, *, quiet: bool) -> None:
    """Print what the run did, its failed checkpoints (when ``quiet``: else the report lists them), MLflow sync errors, the report."""
    typer.echo(
        f"{summary.checkpoints_new_or_stale} checkpoint(s) new or stale: {len(summary.embedded)} embedded, "
        f"{len(summary.failed)} failed; {len(summary.known_failed)} known-bad file(s) unchanged; "
        f"families refreshed: {', '.join(printable(display_name(f)) for f in summary.families) or 'none'}"
    )
    if quiet:  # else the report's table of failed checkpoints lists them
        for checkpoint_id, error in summary.failed.items():
            typer.secho(f"  failed {printable(display_id(checkpoint_id))}: {printable(error)}", fg="yellow")
    for family, error in summary.tracking_errors.items():
        typer.secho(
            f"  MLflow sync of {printable(display_name(family))} to {redact(summary.tracking_uri)} "
            f"failed ({printable(error.splitlines()[0][:300])}); "
            "every result is kept in the work dir and the next run syncs it.", fg="yellow",
        )
    if not quiet:
        from ssl_eval.cli.results import print_report  # here: `report` is listed after `serve` in --help

        print_report(ws, "table")


@command()
def serve(
    ctx: typer.Context,
    store: str = StoreArgument,
    interval: float = typer.Option(300.0, "--interval", min=1.0, help="Seconds between scans of STORE."),
    workdir: Path | None = WorkdirOption,
    results_url: str | None = ResultsUrlOption,
    dataset: str | None = DatasetOption,
    data_root: str | None = DataRootOption,
    config_file: Path | None = ConfigOption,
    dask_address: str | None = DaskOption,
    mlflow_uri: str | None = MlflowOption,
    n_eval: int | None = NEvalOption,
    n_probe_train: int | None = NProbeTrainOption,
    n_probe_test: int | None = NProbeTestOption,
    settle_seconds: float = SettleOption,
    allow_module: list[str] | None = AllowModuleOption,
    memory_gb: float | None = MemoryOption,
    data_gb: float | None = DataBudgetOption,
) -> None:
    """Serve the monitor deployment: scan STORE every --interval seconds (Ctrl-C stops).

    Without PREFECT_API_URL a local Prefect server is started on 127.0.0.1 and stopped on exit.

    Example: ssl-eval serve ./checkpoints --interval 300 --dataset mnist
    """
    ws = open_workspace(workdir, results_url, writing=True)
    hold_for_serve(ws, ctx)  # one serve per work dir: a second one exits 2 naming the first
    location, config, parameters = flow_parameters(store, ws, config_file, {
        "data.name": dataset, "data.root": data_root, "data.n_eval": n_eval,
        "data.n_probe_train": n_probe_train, "data.n_probe_test": n_probe_test, "dask.address": dask_address,
        "limits.memory_gb": memory_gb, "limits.data_gb": data_gb,
    }, allow_module, tracking_uri=hold_credentials(mlflow_uri or ws.mlflow_uri), settle_seconds=settle_seconds)
    check_before_start(location, config, watching=True)
    check_writable(ws)
    from deployments.lifetime import start_reaper
    from deployments.serve import serve as serve_deployment

    start_reaper()
    try:
        serve_deployment(location, interval=interval, parameters=parameters)
    except KeyboardInterrupt:
        typer.echo("stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (TimeoutError, RuntimeError) as exc:  # the local Prefect server did not come up
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(EXIT_NOTHING_EVALUATED) from None

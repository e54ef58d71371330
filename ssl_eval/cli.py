"""The ``ssl-eval`` command line. Flows (and so prefect and mlflow) are imported lazily
inside the commands that need them, after the work dir's environment is set."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from typer.core import TyperCommand

from ssl_eval import strict_json
from ssl_eval.datasets import DATASETS
from ssl_eval.storage.checkpoints import CHECKPOINT_SUFFIXES
from ssl_eval.storage.urls import hold_credentials, redact
from ssl_eval.workspace import DEFAULT_WORKDIR, Workspace

app = typer.Typer(
    add_completion=False, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
    help="Label-free monitoring of self-supervised learning: watch a checkpoint store, measure every "
    "checkpoint, and say which label-free signals track the linear probe.\n\n"
    "Start with: ssl-eval evaluate STORE   (STORE holds <family>/<run>/<checkpoint> files)",
)

# Exit codes (README, "Exit codes"): what a script or a scheduler can rely on.
EXIT_OK = 0  # everything new was evaluated (or nothing was new)
EXIT_NOTHING_EVALUATED = 1  # the run finished but every new checkpoint failed; or an unexpected error
EXIT_USAGE = 2  # bad command line, configuration, store or work dir: found before anything started
EXIT_SOME_FAILED = 3  # some checkpoints failed, the others were evaluated and their results kept
EXIT_INTERRUPTED = 130  # stopped with Ctrl-C

DATASET_HELP = (
    f"Evaluation data set: {', '.join(DATASETS)}, npz:PATH or imagefolder:PATH "
    "(default: the config's \\[data] name, else mnist)."
)

# The options both entry points share, defined once so `evaluate` and `serve` take the same.
WorkdirOption = typer.Option(None, "--workdir", help=f"Work dir for embeddings, records, MLflow and Prefect (default ./{DEFAULT_WORKDIR}).")
ResultsUrlOption = typer.Option(
    None, "--results-url", envvar="SSL_EVAL_RESULTS_URL",
    help="fsspec URL (s3://bucket/prefix) for the embeddings and records shared by remote workers; "
    "credentials from AWS_* environment variables, never in the URL. Default: inside the work dir.",
)
StoreArgument = typer.Argument(
    ..., metavar="STORE", show_default=False,
    help="Checkpoint store: a folder (or fsspec URL) laid out as STORE/<family>/<run>/<checkpoint file>.",
)
DatasetOption = typer.Option(None, "--dataset", help=DATASET_HELP)
DataRootOption = typer.Option(None, "--data-root", help="Folder holding the data set's files (never downloaded).")
ConfigOption = typer.Option(None, "--config", help="TOML configuration (default: STORE/ssl_eval.toml when present).")
DaskOption = typer.Option(
    None, "--dask-address", envvar="SSL_EVAL_DASK_ADDRESS",
    help="tcp://HOST:PORT of an existing Dask scheduler (else the config's \\[dask] address, else a local cluster).",
)
MlflowOption = typer.Option(None, "--mlflow-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: the work dir's sqlite store).")
NEvalOption = typer.Option(None, "--n-eval", min=2, help="Test images the label-free metrics are computed on (default 2000).")
NProbeTrainOption = typer.Option(None, "--n-probe-train", min=2, help="Train images the linear probe is fitted on (default 5000).")
NProbeTestOption = typer.Option(None, "--n-probe-test", min=2, help="Test images the probe is scored on, disjoint from --n-eval's (default 2000).")
SettleOption = typer.Option(2.0, "--settle-seconds", min=0.0, help="A checkpoint modified more recently than this is left for the next scan.")


class _Command(TyperCommand):
    """Usage lines name arguments plainly (``STORE``), as the help text does, not ``{STORE}``."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
                for piece in super().collect_usage_pieces(ctx)]


def command(name: Optional[str] = None):
    """``app.command`` with plain usage lines (:class:`_Command`): the decorator of every command.

    Args:
        name: the command's name; None: the function's name.

    Returns:
        The typer decorator.
    """
    return app.command(name, cls=_Command)


def _version(value: bool) -> None:
    if value:
        from ssl_eval import __version__

        typer.echo(f"ssl-eval {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Label-free monitoring of self-supervised learning."""


def _no_credentials(url: Optional[str], what: str) -> None:
    """Store and results URLs travel as flow parameters (kept in Prefect's database): one
    that carries credentials is refused, with a redacted message."""
    from ssl_eval.storage.urls import has_credentials

    if has_credentials(url):
        raise ValueError(
            f"the {what} {redact(url)} carries credentials (user:password@ or a token parameter); "
            "give them through the environment instead (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "FSSPEC_<PROTOCOL>_<KEY>, ...): they never become flow parameters."
        )


def _store_location(store: str) -> str:
    """A local store as an absolute path (it must be a folder); a URL as given."""
    from ssl_eval.storage.urls import is_url

    if is_url(store):
        _no_credentials(store, "checkpoint store URL")
        return store.rstrip("/")
    path = Path(store)
    if not path.is_dir():
        raise FileNotFoundError(
            f"checkpoint store {store} does not exist or is not a folder; pass the folder that holds <family>/<run>/<checkpoint> files."
        )
    return str(path.resolve())


def _workspace(workdir: Optional[Path], results_url: Optional[str] = None, *, writing: bool = False) -> Workspace:
    """The work dir (created). For reading, the process is pointed at it at once; for a run
    (``writing``), only once the configuration is valid and every place it writes can be
    written (:func:`_check_writable`), so a refused run changes nothing."""
    from ssl_eval.storage.errors import WorkdirError
    from ssl_eval.storage.urls import install_log_redaction

    install_log_redaction()
    try:
        _no_credentials(results_url, "results URL (--results-url)")
        ws = Workspace.at(workdir, results_url=results_url)
    except ValueError as exc:
        _fail(str(exc))
    except WorkdirError as exc:  # the work dir itself cannot be created
        _fail(f"the work dir cannot be used: {exc}")
    if not writing:
        _use(ws)
    return ws


def _use(ws: Workspace) -> None:
    """Point this process at the work dir's Prefect home."""
    for key, value in ws.runtime_env().items():
        os.environ.setdefault(key, value)


def _check_writable(ws: Workspace) -> None:
    """Once the configuration is known to be valid and before anything starts: every place
    a run writes can be written, else exit 2 naming the path and why."""
    from ssl_eval.storage.errors import WorkdirError

    try:
        ws.check_writable()
    except WorkdirError as exc:
        _fail(f"the work dir cannot be used: {exc}")
    _use(ws)


def _existing_workdir(workdir: Optional[Path], results_url: Optional[str] = None) -> None:
    """Commands that only read (report, ui) refuse a work dir that does not exist rather
    than create an empty one: a mistyped --workdir is an error, not an empty report."""
    if results_url:
        return
    path = Path(workdir or os.environ.get("SSL_EVAL_WORKDIR", DEFAULT_WORKDIR))
    if not path.is_dir():
        _fail(f"work dir {path} does not exist; pass the --workdir that `ssl-eval evaluate` wrote to "
              f"(default ./{DEFAULT_WORKDIR} in the folder it ran in).")


def _warm(location: str, ws: Workspace, config, settle_seconds: float) -> None:
    """Work of the flow that needs no Prefect server, done while the server starts: the
    store's fingerprints (remembered in the work dir, so the flow's scan only lists the
    files) and the fixed augmented views (cached in this process, where the threaded Dask
    workers read them). Best effort: the flow does both again and reports any error."""
    from ssl_eval.embedding import cached_views
    from ssl_eval.planning import scan

    for step in (lambda: scan(location, ws, settle_seconds=settle_seconds), lambda: cached_views(config.data)):
        with contextlib.suppress(Exception):
            step()


def _mark(phase: str) -> None:
    """With SSL_EVAL_TIMINGS=FILE, append when each phase of ``evaluate`` ended (one JSON
    line each, wall-clock seconds): benchmarks/end_to_end.py splits the start-up with them."""
    if path := os.environ.get("SSL_EVAL_TIMINGS"):
        with open(path, "a", encoding="utf-8") as out:
            out.write(strict_json.encode({"phase": phase, "time": time.time()}) + "\n")


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(EXIT_USAGE)


@command("make-demo-store")
def make_demo_store_cmd(
    out: Path = typer.Option(..., "--out", help="Folder to write <method>/run-<r>/epoch=NN.ckpt into."),
    epochs: int = typer.Option(8, "--epochs", min=1, help="Training epochs per run; a checkpoint is saved before training and after each."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first run (run r uses seed + r)."),
    dataset: str = typer.Option("mnist", "--dataset", help="Training data set: mnist, fashion-mnist or digits (installed offline)."),
    arch: str = typer.Option("democnn", "--arch", help="Backbone: democnn (fast on a CPU), resnet18-cifar, resnet18, ..."),
    n_train: int = typer.Option(10000, "--n-train", min=16, help="Training images per method."),
    runs: int = typer.Option(1, "--runs", min=1, help="Training runs (seeds) per method: <method>/run-0, run-1, ..."),
    methods: Optional[str] = typer.Option(
        None, "--methods",
        help="Comma-separated SSL methods (simclr, mocov2, simsiam, byol, barlowtwins, vicreg); default: the paper's three.",
    ),
) -> None:
    """Train SimCLR, MoCo-v2 and SimSiam on a real data set and save a checkpoint per epoch.

    Example: ssl-eval make-demo-store --out demo_store --epochs 4
    """
    from ssl_eval.demo.methods import PAPER_METHODS
    from ssl_eval.demo.train import make_demo_store

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip()) if methods else PAPER_METHODS

    try:
        paths = make_demo_store(
            out, dataset=dataset, epochs=epochs, seed=seed, arch=arch, n_train=n_train, runs=runs, methods=chosen,
            progress=lambda line: typer.echo(line),
        )
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {len(paths)} checkpoints under {out}")


AllowModuleOption = typer.Option(
    None, "--allow-module",
    help="Allow import-path architectures (package.module:factory) of this module when the store's own "
    "ssl_eval.toml or a checkpoint's arch entry names them (repeatable; also SSL_EVAL_ALLOW_MODULES).",
)


def _flow_parameters(
    store: str, ws: Workspace, config_file: Optional[Path], overrides: dict, allow_module: Optional[list[str]], **more
) -> tuple[str, Any, dict]:
    """(store location, its configuration as of now, the monitor flow's parameters), or a usage error (exit 2) naming
    what is wrong. The configuration is checked here so that a mistake fails at once; the
    flow resolves it again at every run from the same file and overrides."""
    from ssl_eval.config import load_config

    given = {key: value for key, value in overrides.items() if value is not None}
    file = str(config_file.resolve()) if config_file is not None else None
    try:
        location = _store_location(store)
        config = load_config(file, store=location, allow_modules=tuple(allow_module or ()), **given)
    except (ValueError, FileNotFoundError, OSError) as exc:
        _fail(redact(str(exc)))
    return location, config, {
        "workdir": str(ws.root), "results_url": ws.results_url, "overrides": given, "config_file": file,
        "allow_modules": list(allow_module or ()), **more,
    }


def _warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg="yellow", err=True)


def _check_before_start(location: str, config, *, watching: bool) -> None:
    """The store's layout and the configuration, checked before Prefect or Dask start:
    an error exits 2 with the fix; what only looks wrong is a warning."""
    from ssl_eval.preflight import preflight
    from ssl_eval.storage.urls import is_url

    if not is_url(location):
        from ssl_eval.storage.layout import EXPECTED, layout_problems

        readable, problems = layout_problems(location)
        for problem in problems:
            _warn(problem)
        if not readable and not watching:
            _fail(f"found no checkpoint files in {location}; the layout is {EXPECTED} "
                  f"(names ending in {', '.join(CHECKPOINT_SUFFIXES)}).")
        if not readable:
            _warn(f"no checkpoint files in {location} yet; watching for {EXPECTED}.")
    try:
        warnings = preflight(config)
    except (ValueError, FileNotFoundError, OSError) as exc:
        _fail(f"{redact(str(exc))}\nNothing was started; fix the configuration (--dataset, --data-root, ssl_eval.toml) and rerun.")
    for warning in warnings:
        _warn(warning)


@command()
def evaluate(
    store: str = StoreArgument,
    workdir: Optional[Path] = WorkdirOption,
    results_url: Optional[str] = ResultsUrlOption,
    dataset: Optional[str] = DatasetOption,
    data_root: Optional[str] = DataRootOption,
    config_file: Optional[Path] = ConfigOption,
    dask_address: Optional[str] = DaskOption,
    mlflow_uri: Optional[str] = MlflowOption,
    n_eval: Optional[int] = NEvalOption,
    n_probe_train: Optional[int] = NProbeTrainOption,
    n_probe_test: Optional[int] = NProbeTestOption,
    settle_seconds: float = SettleOption,
    allow_module: Optional[list[str]] = AllowModuleOption,
    quiet: bool = typer.Option(False, "--quiet", help="Do not print the report table at the end."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v",
        help="Print Prefect's, Dask's and MLflow's full logs instead of the progress display (the Prefect UI keeps them either way).",
    ),
) -> None:
    """Evaluate every new or changed checkpoint of STORE once (an ad-hoc Prefect flow run), then print the report.

    Example: ssl-eval evaluate ./checkpoints --dataset mnist --workdir ./.ssl_eval
    """
    _mark("started")  # the interpreter, this module and its imports are loaded
    ws = _workspace(workdir, results_url, writing=True)
    location, config, parameters = _flow_parameters(store, ws, config_file, {
        "data.name": dataset, "data.root": data_root, "data.n_eval": n_eval,
        "data.n_probe_train": n_probe_train, "data.n_probe_test": n_probe_test, "dask.address": dask_address,
    }, allow_module, tracking_uri=hold_credentials(mlflow_uri or ws.mlflow_uri), settle_seconds=settle_seconds)
    _check_before_start(location, config, watching=False)
    _mark("checked")  # configuration, store layout, data set loaded
    _check_writable(ws)
    if not verbose:  # read when prefect and mlflow are first imported (just below)
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "ERROR")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from flows.progress import ProgressDisplay, listening
    from ssl_eval.lifetime import start_reaper
    from ssl_eval.storage.errors import InfrastructureError

    start_reaper()  # the temporary Prefect server and Dask never outlive this command, even a kill -9
    display = contextlib.nullcontext() if verbose else ProgressDisplay()
    try:
        with display as shown, (listening(shown) if shown else contextlib.nullcontext()):
            from deployments.temporary_server import temporary_api

            # The temporary Prefect server starts in its own process while this one imports
            # the flows and scans the store; the flow starts once the server is healthy.
            with temporary_api(ws.prefect_home / "server.log") as server_ready:
                _mark("server launched")
                from flows.monitor import run_monitor

                _mark("flows imported")
                _warm(location, ws, config, settle_seconds)
                _mark("warmed")
                try:
                    server_ready()
                except (RuntimeError, TimeoutError) as exc:
                    raise InfrastructureError(str(exc)) from None
                _mark("server ready")
                summary = run_monitor(location, **parameters)
        _mark("flow finished")
    except InfrastructureError as exc:
        typer.secho(f"error: the run stopped: {redact(str(exc))}", fg="red", err=True)
        raise typer.Exit(EXIT_NOTHING_EVALUATED) from None
    except KeyboardInterrupt:
        typer.secho("interrupted: finished checkpoints are kept; the next run continues with the rest.", fg="yellow", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    typer.echo(
        f"{summary.checkpoints_new_or_stale} checkpoint(s) new or stale: {len(summary.embedded)} embedded, "
        f"{len(summary.failed)} failed; {len(summary.known_failed)} known-bad file(s) unchanged; "
        f"families refreshed: {', '.join(summary.families) or 'none'}"
    )
    if quiet:  # else the report's table of failed checkpoints lists them
        for checkpoint_id, error in summary.failed.items():
            typer.secho(f"  failed {checkpoint_id}: {error}", fg="yellow")
    for family, error in summary.tracking_errors.items():
        typer.secho(
            f"  MLflow sync of {family} to {redact(summary.tracking_uri)} failed ({error.splitlines()[0][:300]}); "
            "every result is kept in the work dir and the next run syncs it.", fg="yellow",
        )
    if not quiet:
        _print_report(ws, "table")
    _mark("reported")
    if summary.failed:
        raise typer.Exit(EXIT_SOME_FAILED if summary.embedded else EXIT_NOTHING_EVALUATED)


@command()
def serve(
    store: str = StoreArgument,
    interval: float = typer.Option(300.0, "--interval", min=1.0, help="Seconds between scans of STORE."),
    workdir: Optional[Path] = WorkdirOption,
    results_url: Optional[str] = ResultsUrlOption,
    dataset: Optional[str] = DatasetOption,
    data_root: Optional[str] = DataRootOption,
    config_file: Optional[Path] = ConfigOption,
    dask_address: Optional[str] = DaskOption,
    mlflow_uri: Optional[str] = MlflowOption,
    n_eval: Optional[int] = NEvalOption,
    n_probe_train: Optional[int] = NProbeTrainOption,
    n_probe_test: Optional[int] = NProbeTestOption,
    settle_seconds: float = SettleOption,
    allow_module: Optional[list[str]] = AllowModuleOption,
) -> None:
    """Serve the monitor deployment: scan STORE every --interval seconds (Ctrl-C stops).

    Without PREFECT_API_URL a local Prefect server is started on 127.0.0.1 and stopped on exit.

    Example: ssl-eval serve ./checkpoints --interval 300 --dataset mnist
    """
    ws = _workspace(workdir, results_url, writing=True)
    location, config, parameters = _flow_parameters(store, ws, config_file, {
        "data.name": dataset, "data.root": data_root, "data.n_eval": n_eval,
        "data.n_probe_train": n_probe_train, "data.n_probe_test": n_probe_test, "dask.address": dask_address,
    }, allow_module, tracking_uri=hold_credentials(mlflow_uri or ws.mlflow_uri), settle_seconds=settle_seconds)
    _check_before_start(location, config, watching=True)
    _check_writable(ws)
    from deployments.serve import serve as serve_deployment
    from ssl_eval.lifetime import start_reaper

    start_reaper()
    try:
        serve_deployment(location, interval=interval, parameters=parameters)
    except KeyboardInterrupt:
        typer.echo("stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (TimeoutError, RuntimeError) as exc:  # the local Prefect server did not come up
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(EXIT_NOTHING_EVALUATED) from None


REPORT_FORMATS = ("table", "json", "csv")


def _print_report(ws: Workspace, fmt: str) -> dict:
    from ssl_eval.report import collect, render_table, to_json

    doc = collect(ws)
    if fmt == "json":
        typer.echo(to_json(doc))
    elif fmt == "csv":
        from ssl_eval.report_csv import to_csv

        typer.echo(to_csv(doc), nl=False)
    else:
        render_table(doc)
    return doc


@command()
def report(
    workdir: Optional[Path] = WorkdirOption,
    results_url: Optional[str] = ResultsUrlOption,
    fmt: str = typer.Option(
        "table", "--format", help="table (fits the terminal), json (strict: null where undefined), or csv (one row per checkpoint)."
    ),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Also write one self-contained HTML page (tables and figures) to this file."),
) -> None:
    """Print every family's correlations of label-free metrics with the linear probe.

    Example: ssl-eval report --workdir ./.ssl_eval --format csv > checkpoints.csv
    """
    if fmt not in REPORT_FORMATS:
        _fail(f"--format must be one of {', '.join(REPORT_FORMATS)}; got {fmt!r}.")
    _existing_workdir(workdir, results_url)
    doc = _print_report(_workspace(workdir, results_url), fmt)
    if html_out:
        from ssl_eval.html_report import write_html

        try:
            path = write_html(doc, html_out)
        except OSError as exc:
            _fail(f"cannot write the HTML report to {html_out} ({exc}); pass a writable file path.")
        typer.echo(f"wrote {path}", err=fmt != "table")


@command()
def metrics(
    embeddings: Path = typer.Argument(..., metavar="EMBEDDINGS.npy", show_default=False, help="A saved (N, D) float array (.npy)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="(N,) integer labels (.npy) for AMI with ground truth."),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="Clusters for k-means (default: label count, else 10)."),
    seed: int = typer.Option(0, "--seed", help="random_state of k-means and of any subsampling."),
    fmt: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Compute every registry metric that applies to a saved embedding array.

    Example: ssl-eval metrics emb.npy --labels y.npy --format json
    """
    import numpy as np

    from ssl_eval.metrics import METRICS, MetricOptions, compute_all

    def load(path: Path, what: str) -> np.ndarray:
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            _fail(f"{path}: cannot read {what} as a .npy array ({exc}); save it with numpy.save.")

    X = load(embeddings, "embeddings")
    y = load(labels, "labels") if labels is not None else None
    if X.ndim != 2:
        _fail(f"{embeddings}: expected an (N, D) array, got shape {X.shape}; reshape to one row per image.")
    if y is not None and y.shape != (X.shape[0],):
        _fail(f"{labels}: expected ({X.shape[0]},) labels to match {embeddings}, got shape {y.shape}.")
    result = compute_all(X, labels=y, options=MetricOptions(k=k), random_state=seed)
    values, flags = result.values, list(result.flags)
    if fmt == "json":
        doc = {"n": int(X.shape[0]), "d": int(X.shape[1]), "metrics": values, "flags": flags}
        typer.echo(strict_json.encode(doc, indent=1))  # null where a metric is undefined
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{escape(embeddings.name)}: N={X.shape[0]}, D={X.shape[1]}", title_justify="left")
    for col in ("metric", "value", "better", "definition"):
        table.add_column(col)
    for name, value in values.items():
        spec = METRICS[name]
        table.add_row(name, f"{value:.4g}", "higher" if spec.higher_is_better else "lower", spec.definition)
    Console().print(table)
    if flags:
        typer.secho(f"flags: {', '.join(flags)}", fg="yellow")


MLFLOW_UI_APP = "ssl-eval"  # the mlflow.app entry point (pyproject.toml)


def _has_ui_app() -> bool:
    """Whether ``mlflow ui --app-name ssl-eval`` can load tasks/mlflow_ui.py (the package is
    installed with its entry points, not only on PYTHONPATH)."""
    from importlib.metadata import entry_points

    return any(e.name == MLFLOW_UI_APP for e in entry_points(group="mlflow.app"))


@command()
def ui(
    workdir: Optional[Path] = WorkdirOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 127.0.0.1 unless you mean to share it."),
    port: int = typer.Option(5000, "--port", help="Port of the MLflow UI."),
) -> None:
    """Start the MLflow UI over the work dir's tracking store.

    Example: ssl-eval ui --workdir ./.ssl_eval --port 5000
    """
    _existing_workdir(workdir)
    ws = Workspace.at(workdir)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    args = [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", ws.mlflow_uri,
        "--default-artifact-root", ws.mlflow_artifacts.as_uri(), "--host", host, "--port", str(port), "--workers", "1",
    ]
    url = f"http://{host}:{port}"
    if _has_ui_app():  # MLflow's own app, opening in the classic "Model training" view (tasks/mlflow_ui.py)
        args += ["--app-name", MLFLOW_UI_APP]
        typer.echo(f"MLflow UI on {url} (Ctrl-C stops it)")
    else:
        typer.echo(f"MLflow UI on {url}/#/experiments?workflowType=machine_learning (Ctrl-C stops it)")
        typer.echo("  MLflow 3 may open experiments in its GenAI view: click 'Model training' at the top left once.")
    if (ws.root / "mlflow.db").exists():
        from tasks.mlflow_mirror import summary_charts_url

        if charts := summary_charts_url(ws.mlflow_uri, url):
            typer.echo(f"  families side by side (the summary experiment's charts): {charts}")
    os.execve(sys.executable, args, env)


def main() -> None:
    """The ``ssl-eval`` console script: run the typer app on ``sys.argv``."""
    app()


if __name__ == "__main__":
    main()

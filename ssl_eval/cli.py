"""The ``ssl-eval`` command line. Flows (and so prefect and mlflow) are imported lazily
inside the commands that need them, after the work dir's environment is set."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from ssl_eval.store.urls import redact
from ssl_eval.workspace import DEFAULT_WORKDIR, Workspace

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Label-free monitoring of self-supervised learning.")

WorkdirOption = typer.Option(None, "--workdir", help=f"Work dir for embeddings, records, MLflow and Prefect (default ./{DEFAULT_WORKDIR}).")
StoreUrlOption = typer.Option(
    None, "--store-url", envvar="SSL_EVAL_STORE_URL",
    help="fsspec URL (s3://bucket/prefix) for the embeddings and records shared by remote workers; "
    "credentials from AWS_* environment variables, never in the URL. Default: inside the work dir.",
)


def _store_location(store: str) -> str:
    """A local store as an absolute path (it must be a folder); a URL as given."""
    from ssl_eval.store.urls import is_url

    if is_url(store):
        return store.rstrip("/")
    path = Path(store)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint store {store} does not exist or is not a folder; pass the folder that holds <family>/<run>/<checkpoint> files.")
    return str(path.resolve())


def _config_file(config_file: Optional[Path], store: str, ws: Workspace) -> Optional[Path]:
    """``--config``, else a URL store's ssl_eval.toml fetched into the work dir (a local
    store's own file is found by load_config)."""
    from ssl_eval.config import CONFIG_FILE
    from ssl_eval.store.urls import filesystem, is_url, join

    if config_file is not None or not is_url(store):
        return config_file
    fs, base = filesystem(store)
    try:
        text = fs.cat_file(join(base, CONFIG_FILE))
    except FileNotFoundError:
        return None
    local = ws.root / "store-config.toml"
    local.write_bytes(text)
    return local


def _workspace(workdir: Optional[Path], store_url: Optional[str] = None) -> Workspace:
    ws = Workspace.at(workdir, store_url=store_url)
    if ws.store_url:  # tasks that open the work dir by path alone find the shared store too
        os.environ["SSL_EVAL_STORE_URL"] = ws.store_url
    for key, value in ws.runtime_env().items():
        os.environ.setdefault(key, value)
    return ws


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


@app.command("make-demo-store")
def make_demo_store_cmd(
    out: Path = typer.Option(..., "--out", help="Folder to write <method>/run-<r>/epoch=NN.ckpt into."),
    epochs: int = typer.Option(8, "--epochs", min=1),
    seed: int = typer.Option(0, "--seed"),
    dataset: str = typer.Option("mnist", "--dataset"),
    arch: str = typer.Option("democnn", "--arch"),
    n_train: int = typer.Option(10000, "--n-train", min=16, help="Training images per method."),
    runs: int = typer.Option(1, "--runs", min=1),
    methods: Optional[str] = typer.Option(
        None, "--methods",
        help="Comma-separated SSL methods (simclr, mocov2, simsiam, byol, barlowtwins, vicreg); default: the paper's three.",
    ),
) -> None:
    """Train SimCLR, MoCo-v2 and SimSiam on a real data set and save a checkpoint per epoch."""
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


@app.command()
def evaluate(
    store: str = typer.Argument(..., help="Checkpoint store: <store>/<family>/<run>/<checkpoint>, a folder or an fsspec URL."),
    workdir: Optional[Path] = WorkdirOption,
    store_url: Optional[str] = StoreUrlOption,
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Evaluation data set (digits, mnist, fashion-mnist, npz:PATH)."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Folder holding the data set's files."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="TOML config (default: <store>/ssl_eval.toml if present)."),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", envvar="SSL_EVAL_DASK_ADDRESS", help="tcp://HOST:PORT of an existing Dask scheduler (else [dask] address, else a local cluster)."),
    mlflow_uri: Optional[str] = typer.Option(None, "--mlflow-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: the work dir's sqlite store)."),
    n_eval: Optional[int] = typer.Option(None, "--n-eval", help="Evaluation images (label-free metrics)."),
    n_probe_train: Optional[int] = typer.Option(None, "--n-probe-train"),
    n_probe_test: Optional[int] = typer.Option(None, "--n-probe-test"),
    quiet: bool = typer.Option(False, "--quiet", help="Do not print the report table at the end."),
    allow_module: Optional[list[str]] = AllowModuleOption,
) -> None:
    """Evaluate every checkpoint of STORE as an ad-hoc Prefect flow run."""
    from ssl_eval.config import load_config

    ws = _workspace(workdir, store_url)
    try:
        location = _store_location(store)
        config = load_config(
            _config_file(config_file, location, ws), store=None if "://" in location else location,
            allow_modules=tuple(allow_module or ()), from_store=config_file is None,
            **{"data.name": dataset, "data.root": data_root, "data.n_eval": n_eval,
               "data.n_probe_train": n_probe_train, "data.n_probe_test": n_probe_test, "dask.address": dask_address},
        )
    except (ValueError, FileNotFoundError, OSError) as exc:
        _fail(redact(str(exc)))
    from flows.monitor import run_monitor

    summary = run_monitor(
        location, str(ws.root), config, tracking_uri=mlflow_uri or ws.mlflow_uri, store_url=ws.store_url,
    )
    typer.echo(
        f"{summary['checkpoints_new_or_stale']} checkpoint(s) new or stale: {len(summary['embedded'])} embedded, "
        f"{len(summary['failed'])} failed; {len(summary['known_failed'])} known-bad file(s) unchanged; "
        f"families refreshed: {', '.join(summary['families']) or 'none'}"
    )
    for checkpoint_id, error in summary["failed"].items():
        typer.secho(f"  failed {checkpoint_id}: {error}", fg="yellow")
    for family, error in summary["tracking_errors"].items():
        typer.secho(
            f"  MLflow sync of {family} to {redact(summary['tracking_uri'])} failed ({error.splitlines()[0][:300]}); "
            "every result is kept in the work dir and the next run syncs it.", fg="yellow",
        )
    if not quiet:
        report(workdir=ws.root, store_url=ws.store_url, fmt="table")


@app.command()
def serve(
    store: str = typer.Argument(..., help="Checkpoint store to watch (a folder or an fsspec URL)."),
    interval: float = typer.Option(300.0, "--interval", min=1.0, help="Seconds between scans."),
    workdir: Optional[Path] = WorkdirOption,
    store_url: Optional[str] = StoreUrlOption,
    dataset: Optional[str] = typer.Option(None, "--dataset"),
    config_file: Optional[Path] = typer.Option(None, "--config"),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", envvar="SSL_EVAL_DASK_ADDRESS"),
    mlflow_uri: Optional[str] = typer.Option(None, "--mlflow-uri", envvar="MLFLOW_TRACKING_URI"),
    settle_seconds: float = typer.Option(2.0, "--settle-seconds", help="A file modified more recently is left for the next scan."),
    allow_module: Optional[list[str]] = AllowModuleOption,
) -> None:
    """Serve the monitor deployment: scan STORE every --interval seconds (Ctrl-C stops).

    Without PREFECT_API_URL a local Prefect server is started on 127.0.0.1 and stopped on exit."""
    from ssl_eval.config import load_config

    ws = _workspace(workdir, store_url)
    try:
        location = _store_location(store)
        config = load_config(
            _config_file(config_file, location, ws), store=None if "://" in location else location,
            allow_modules=tuple(allow_module or ()), from_store=config_file is None,
            **{"data.name": dataset, "dask.address": dask_address},
        )
    except (ValueError, FileNotFoundError, OSError) as exc:
        _fail(redact(str(exc)))
    from deployments.serve import serve as serve_deployment

    try:
        serve_deployment(
            location, str(ws.root), config.model_dump(mode="json"), interval=interval,
            tracking_uri=mlflow_uri or ws.mlflow_uri, dask_address=config.dask.address, settle_seconds=settle_seconds,
            store_url=ws.store_url,
        )
    except KeyboardInterrupt:
        typer.echo("stopped")


@app.command()
def report(
    workdir: Optional[Path] = WorkdirOption,
    store_url: Optional[str] = StoreUrlOption,
    fmt: str = typer.Option("table", "--format", help="table or json"),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Also write one self-contained HTML page (tables and figures) to this file."),
) -> None:
    """Print every family's correlations of label-free metrics with the linear probe."""
    from ssl_eval.report import collect, render_table

    if not isinstance(html_out, (str, Path)):  # called as a function (by evaluate) without it
        html_out = None
    if fmt not in ("table", "json"):
        _fail(f"--format must be 'table' or 'json', got {fmt!r}.")
    doc = collect(_workspace(workdir, store_url))
    if fmt == "json":
        typer.echo(json.dumps(doc, indent=1, default=float))
    else:
        render_table(doc)
    if html_out:
        from ssl_eval.html_report import write_html

        try:
            path = write_html(doc, html_out)
        except OSError as exc:
            _fail(f"cannot write the HTML report to {html_out} ({exc}); pass a writable file path.")
        typer.echo(f"wrote {path}", err=fmt == "json")


@app.command()
def metrics(
    embeddings: Path = typer.Argument(..., help="A saved (N, D) float array (.npy)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="(N,) integer labels (.npy) for AMI with ground truth."),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="Clusters for k-means (default: label count, else 10)."),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Compute every registry metric that applies to a saved embedding array."""
    import numpy as np

    from ssl_eval.metrics import GROUPS, METRICS, MetricOptions, compute_group

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
    values: dict[str, float] = {}
    flags: list[str] = []
    for group in GROUPS:
        result = compute_group(group, X, labels=y, options=MetricOptions(k=k), random_state=seed)
        values.update(result.values)
        flags += [f for f in result.flags if f not in flags]
    if fmt == "json":
        typer.echo(json.dumps({"n": int(X.shape[0]), "d": int(X.shape[1]), "metrics": values, "flags": flags}, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{embeddings.name}: N={X.shape[0]}, D={X.shape[1]}", title_justify="left")
    for col in ("metric", "value", "better", "definition"):
        table.add_column(col)
    for name, value in values.items():
        spec = METRICS[name]
        table.add_row(name, f"{value:.4g}", "higher" if spec.higher_is_better else "lower", spec.definition)
    Console(width=160).print(table)
    if flags:
        typer.secho(f"flags: {', '.join(flags)}", fg="yellow")


@app.command()
def ui(
    workdir: Optional[Path] = WorkdirOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 127.0.0.1 unless you mean to share it."),
    port: int = typer.Option(5000, "--port"),
) -> None:
    """Start the MLflow UI over the work dir's tracking store."""
    ws = Workspace.at(workdir)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    args = [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", ws.mlflow_uri,
        "--default-artifact-root", ws.mlflow_artifacts.as_uri(), "--host", host, "--port", str(port), "--workers", "1",
    ]
    typer.echo(f"MLflow UI on http://{host}:{port} (Ctrl-C stops it)")
    os.execve(sys.executable, args, env)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

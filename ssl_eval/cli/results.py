"""``ssl-eval report`` and ``ssl-eval metrics``: the commands that read results.

``report`` shows a work dir's results as a table, JSON, CSV or HTML; ``metrics`` computes every
registry metric of one saved embedding array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ssl_eval.cli.application import command, fail
from ssl_eval.cli.options import ResultsUrlOption, WorkdirOption
from ssl_eval.cli.workdir import open_workspace, require_existing_workdir
from ssl_eval.common import strict_json
from ssl_eval.results.workspace import Workspace

__all__ = ["REPORT_FORMATS", "print_report", "report", "metrics"]

REPORT_FORMATS = ("table", "json", "csv")


def print_report(ws: Workspace, fmt: str) -> dict[str, Any]:
    """Print the work dir's report on stdout.

    Args:
        ws: the work dir to read.
        fmt: one of :data:`REPORT_FORMATS`.

    Returns:
        The report document (:func:`ssl_eval.reporting.report.collect`).
    """
    from ssl_eval.reporting.report import collect, render_table, to_json

    doc = collect(ws)
    if fmt == "json":
        typer.echo(to_json(doc))
    elif fmt == "csv":
        from ssl_eval.reporting.csv_table import to_csv

        typer.echo(to_csv(doc), nl=False)
    else:
        render_table(doc)
    return doc


@command()
def report(
    workdir: Path | None = WorkdirOption,
    results_url: str | None = ResultsUrlOption,
    fmt: str = typer.Option(
        "table", "--format", help="table (fits the terminal), json (strict: null where undefined), or csv (one row per checkpoint)."
    ),
    html_out: Path | None = typer.Option(None, "--html", help="Also write one self-contained HTML page (tables and figures) to this file."),
) -> None:
    """Print every family's correlations of label-free metrics with the linear probe.

    Example: ssl-eval report --workdir ./.ssl_eval --format csv > checkpoints.csv
    """
    if fmt not in REPORT_FORMATS:
        fail(f"--format must be one of {', '.join(REPORT_FORMATS)}; got {fmt!r}.")
    require_existing_workdir(workdir, results_url)
    doc = print_report(open_workspace(workdir, results_url), fmt)
    if html_out:
        from ssl_eval.reporting.html_page import write_html

        try:
            path = write_html(doc, html_out)
        except OSError as exc:
            fail(f"cannot write the HTML report to {html_out} ({exc}); pass a writable file path.")
        typer.echo(f"wrote {path}", err=fmt != "table")


@command()
def metrics(
    embeddings: Path = typer.Argument(..., metavar="EMBEDDINGS.npy", show_default=False, help="A saved (N, D) float array (.npy)."),
    labels: Path | None = typer.Option(None, "--labels", help="(N,) integer labels (.npy) for AMI with ground truth."),
    k: int | None = typer.Option(None, "--k", min=1, help="Clusters for k-means (default: label count, else 10)."),
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
            fail(f"{path}: cannot read {what} as a .npy array ({exc}); save it with numpy.save.")

    X = load(embeddings, "embeddings")
    y = load(labels, "labels") if labels is not None else None
    if X.ndim != 2:
        fail(f"{embeddings}: expected an (N, D) array, got shape {X.shape}; reshape to one row per image.")
    if y is not None and y.shape != (X.shape[0],):
        fail(f"{labels}: expected ({X.shape[0]},) labels to match {embeddings}, got shape {y.shape}.")
    result = compute_all(X, labels=y, options=MetricOptions(k=k), random_state=seed)
    values, flags = result.values, list(result.flags)
    if fmt == "json":
        doc = {"n": int(X.shape[0]), "d": int(X.shape[1]), "metrics": values, "flags": flags}
        typer.echo(strict_json.encode(doc, indent=1))  # null where a metric is undefined
        return
    from rich.console import Console
    from rich.table import Table

    from ssl_eval.common.safe_text import rich_safe

    table = Table(title=f"{rich_safe(embeddings.name)}: N={X.shape[0]}, D={X.shape[1]}", title_justify="left")
    for col in ("metric", "value", "better", "definition"):
        table.add_column(col)
    for name, value in values.items():
        spec = METRICS[name]
        table.add_row(name, f"{value:.4g}", "higher" if spec.higher_is_better else "lower", spec.definition)
    Console().print(table)
    if flags:
        typer.secho(f"flags: {', '.join(flags)}", fg="yellow")

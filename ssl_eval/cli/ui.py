"""``ssl-eval ui``: the MLflow UI over a work dir's tracking store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from ssl_eval.cli.application import command
from ssl_eval.cli.options import WorkdirOption
from ssl_eval.cli.workdir import require_existing_workdir
from ssl_eval.results.workspace import Workspace

__all__ = ["MLFLOW_UI_APP", "has_ui_app", "ui"]

MLFLOW_UI_APP = "ssl-eval"  # the mlflow.app entry point (pyproject.toml)


def has_ui_app() -> bool:
    """Whether ``mlflow ui --app-name ssl-eval`` can load ssl_eval/integrations/mlflow_ui.py.

    It can when the package is installed with its entry points, not only on PYTHONPATH.

    Returns:
        True when the ``mlflow.app`` entry point ``ssl-eval`` is installed.
    """
    from importlib.metadata import entry_points

    return any(e.name == MLFLOW_UI_APP for e in entry_points(group="mlflow.app"))


@command()
def ui(
    workdir: Path | None = WorkdirOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 127.0.0.1 unless you mean to share it."),
    port: int = typer.Option(5000, "--port", help="Port of the MLflow UI."),
) -> None:
    """Start the MLflow UI over the work dir's tracking store.

    Example: ssl-eval ui --workdir ./.ssl_eval --port 5000
    """
    require_existing_workdir(workdir)
    ws = Workspace.at(workdir)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    args = [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", ws.mlflow_uri,
        "--default-artifact-root", ws.mlflow_artifacts.as_uri(), "--host", host, "--port", str(port), "--workers", "1",
    ]
    url = f"http://{host}:{port}"
    if has_ui_app():  # MLflow's own app, opening in the classic "Model training" view (ssl_eval/integrations/mlflow_ui.py)
        args += ["--app-name", MLFLOW_UI_APP]
        typer.echo(f"MLflow UI on {url} (Ctrl-C stops it)")
    else:
        typer.echo(f"MLflow UI on {url}/#/experiments?workflowType=machine_learning (Ctrl-C stops it)")
        typer.echo("  MLflow 3 may open experiments in its GenAI view: click 'Model training' at the top left once.")
    if ws.mlflow_db.exists():
        from ssl_eval.integrations.mlflow_figures import draw_figures
        from ssl_eval.integrations.mlflow_mirror import summary_charts_url

        # `ssl-eval evaluate` leaves the figures to be drawn here, where someone looks at them
        if drawn := draw_figures(ws, ws.mlflow_uri):
            typer.echo(f"  drew the figures of {len(drawn)} famil{'y' if len(drawn) == 1 else 'ies'} (each correlations run's Artifacts)")
        if charts := summary_charts_url(ws.mlflow_uri, url):
            typer.echo(f"  families side by side (the summary experiment's charts): {charts}")
    os.execve(sys.executable, args, env)  # noqa: S606 - becomes our own interpreter serving MLflow's UI, argv built above

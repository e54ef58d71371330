"""The command line as a new user meets it.

-h, --version, help for every option, plain usage lines, an example per command, and the same
evaluation options at evaluate and serve.
"""

from __future__ import annotations

import os
import re
from importlib.metadata import version

import pytest
import typer
from typer.testing import CliRunner

from ssl_eval.cli import app
from ssl_eval.sources.datasets import DATASETS

runner = CliRunner()
COMMANDS = sorted(typer.main.get_group(app).commands)


def _command(name: str):
    return typer.main.get_group(app).commands[name]


def test_version_matches_the_installed_package():
    import ssl_eval

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"ssl-eval {version('ssl-eval')}" == f"ssl-eval {ssl_eval.__version__}"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_short_and_long_help_at_top_and_per_command(flag):
    top = runner.invoke(app, [flag])
    assert top.exit_code == 0 and "evaluate" in top.output and "serve" in top.output
    for name in COMMANDS:
        result = runner.invoke(app, [name, flag], terminal_width=200)
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_and_every_command_an_example(name):
    command = _command(name)
    undocumented = [p.name for p in command.params if not getattr(p, "help", None)]
    assert undocumented == [], f"{name}: options without help text: {undocumented}"
    assert f"Example: ssl-eval {name} " in (command.help or "")


def test_usage_line_names_the_store_plainly():
    result = runner.invoke(app, ["evaluate", "-h"], env={"COLUMNS": "200"})
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert usage.rstrip().endswith("[OPTIONS] STORE") and "{" not in usage


def test_help_shows_config_sections_and_every_data_set():
    result = runner.invoke(app, ["evaluate", "-h"], env={"COLUMNS": "100"})
    text = " ".join(result.output.replace("│", " ").split())  # the help's words, without its box
    assert "[dask] address" in text and "[data] name" in text  # not eaten as rich markup
    for name in DATASETS:
        assert name in text


def test_evaluate_and_serve_take_the_same_evaluation_options():
    def options(name: str) -> set[str]:
        return {opt for p in _command(name).params for opt in p.opts if opt.startswith("-")}

    only_evaluate = options("evaluate") - options("serve")
    only_serve = options("serve") - options("evaluate")
    assert only_evaluate == {"--quiet", "--verbose", "-v"} and only_serve == {"--interval"}


@pytest.mark.parametrize("command", [["report"], ["ui"]])
def test_read_only_commands_refuse_a_missing_workdir(tmp_path, command):
    missing = tmp_path / "typo"
    result = runner.invoke(app, [*command, "--workdir", str(missing)])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "--workdir" in result.output
    assert not missing.exists()  # nothing created behind the user's back


@pytest.mark.slow
@pytest.mark.parametrize("installed", [True, False])
def test_ui_serves_mlflow_through_the_classic_view_app_when_installed(tmp_path, monkeypatch, installed, mlflow_store):
    import ssl_eval.cli.ui as cli

    started = []
    monkeypatch.setattr(cli, "has_ui_app", lambda: installed)
    monkeypatch.setattr(os, "execve", lambda path, args, env: started.append((args, env)))
    (tmp_path / "work").mkdir()
    if installed:  # a synced work dir: the link to the families side by side
        from mlflow.tracking import MlflowClient

        MlflowClient(mlflow_store(tmp_path / "work" / "mlflow.db")).create_experiment("ssl-eval/_summary")
    result = runner.invoke(app, ["ui", "--workdir", str(tmp_path / "work"), "--port", "5123"])
    assert result.exit_code == 0, result.output
    ((args, env),) = started
    assert args[args.index("--port") + 1] == "5123" and args[args.index("--host") + 1] == "127.0.0.1"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    if installed:  # ssl_eval/integrations/mlflow_ui.py: MLflow's own UI, preset to the classic view
        assert args[args.index("--app-name") + 1] == cli.MLFLOW_UI_APP
        assert "MLflow UI on http://127.0.0.1:5123 " in result.output
        assert re.search(r"side by side .*: http://127\.0\.0\.1:5123/#/experiments/\d+/runs\?compareRunsMode=CHART", result.output)
    else:  # plain MLflow: a link that opens the classic view, and what to click
        assert "--app-name" not in args and "side by side" not in result.output  # nothing synced yet
        assert not (tmp_path / "work" / "mlflow.db").exists()  # and no database made to find that out
        assert "http://127.0.0.1:5123/#/experiments?workflowType=machine_learning" in result.output
        assert "Model training" in result.output

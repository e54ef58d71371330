"""Start-up cost of the command line (issue 15, item 2).

Commands that need neither Prefect, MLflow, Dask nor torch do not import them, `evaluate` checks
its configuration and data set before importing any of them, and it launches its temporary
Prefect server only when no API is configured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "prefect", "mlflow", "dask", "distributed", "sklearn")


def _imported_after(args: list[str], cwd: Path) -> dict:
    code = (
        "import json, sys\n"
        "from ssl_eval.cli import app\n"
        f"try:\n    app({args!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["evaluate", "--help"], ["ui", "--help"], ["report", "--help"]])
def test_help_imports_no_heavy_library(args, tmp_path):
    assert _imported_after(args, tmp_path) == []


@pytest.mark.slow
def test_report_imports_neither_torch_prefect_mlflow_nor_dask(tmp_path):
    (tmp_path / "w").mkdir()
    imported = _imported_after(["report", "--workdir", str(tmp_path / "w"), "--format", "json"], tmp_path)
    assert not set(imported) & {"torch", "prefect", "mlflow", "dask", "distributed"}, imported


def test_a_configured_api_url_launches_no_server(tmp_path, monkeypatch):
    from deployments import server

    def no_launch(*args, **kwargs):
        raise AssertionError("a server was launched although PREFECT_API_URL is set")

    monkeypatch.setattr(server, "_launch", no_launch)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # read while prefect is not imported
    from prefect.settings import PREFECT_API_URL, temporary_settings  # once it is, its settings are asked

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with server.temporary_api(tmp_path / "server.log") as ready:
            ready()
    assert not (tmp_path / "server.log").exists()


def test_evaluate_checks_the_configuration_and_data_before_any_heavy_import(tmp_path):
    # the checks come before the temporary server is launched: the longer they take, the later
    # it starts (and a refusal should come at once); torch, scikit-learn and the rest load after
    (tmp_path / "store" / "simclr" / "run-0").mkdir(parents=True)
    (tmp_path / "store" / "simclr" / "run-0" / "epoch=00.ckpt").write_bytes(b"not read before the checks pass")
    args = ["evaluate", str(tmp_path / "store"), "--workdir", str(tmp_path / "w"), "--dataset", "mnist",
            "--data-root", str(tmp_path / "no-data-here")]
    assert _imported_after(args, tmp_path) == []
    assert not (tmp_path / "w" / "prefect").exists()  # refused: nothing started

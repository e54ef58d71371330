"""Credentials never leave the process that uses them.

`ssl-eval evaluate` with an MLflow URI that carries a password (holding "@") and token query
parameters, against a server that is down, so MLflow's own error messages quote the URI. Afterwards
no file the run wrote (records, MLflow store, Prefect's database and logs, Dask scratch) and none of
its output holds a secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import make_store

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("p@ss-W0RD-1", "W0RD-1", "T0KEN-2", "ACC-3", "SIG-4")
URI = "http://alice:p@ss-W0RD-1@127.0.0.1:9/mlflow?api_token=T0KEN-2&access_token=ACC-3&X-Amz-Signature=SIG-4"


def test_no_credential_reaches_any_file_or_output_of_a_run(tmp_path, prefect_template):
    store = make_store(tmp_path / "store", {"simclr": 2})
    work = tmp_path / "work"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "DASK_", "MPLCONFIGDIR", "MLFLOW_", "SSL_EVAL_"))}
    # the session's Prefect database template (not the user's cache): the run's server starts from a copy
    env.update(PYTHONPATH=str(ROOT), MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="3",
               SSL_EVAL_CACHE_DIR=str(prefect_template.parent))
    result = subprocess.run(
        [sys.executable, "-m", "ssl_eval.cli", "evaluate", str(store), "--workdir", str(work), "--dataset", "digits",
         "--n-eval", "200", "--n-probe-train", "300", "--n-probe-test", "200", "--mlflow-uri", URI],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "MLflow sync of simclr to http://***@127.0.0.1:9/mlflow?api_token=***&access_token=***&X-Amz-Signature=*** failed" in output
    assert (work / "prefect" / "prefect.db").is_file() and (work / "records" / "simclr").is_dir()  # the run wrote there
    leaks = [secret for secret in SECRETS if secret in output]
    written = [p for p in work.rglob("*") if p.is_file()]
    leaks += [f"{p.relative_to(work)}: {s}" for p in written for s in SECRETS if s.encode() in p.read_bytes()]
    assert not leaks, leaks
    assert len(written) > 20


def test_store_and_results_urls_with_credentials_are_refused_redacted(tmp_path):
    from typer.testing import CliRunner

    from ssl_eval.cli import app

    for args in (["evaluate", "s3://AKIA:SECRET-5@bucket/store"], ["evaluate", str(tmp_path), "--results-url", "s3://bucket/r?X-Amz-Security-Token=SECRET-5"]):
        result = CliRunner().invoke(app, [*args, "--workdir", str(tmp_path / "w")])
        assert result.exit_code == 2 and "carries credentials" in result.output, result.output
        assert "SECRET-5" not in result.output

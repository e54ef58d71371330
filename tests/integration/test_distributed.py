"""The distributed setup for real, every part started and stopped by this test on 127.0.0.1.

- an S3 endpoint (moto's server mode) holding the checkpoint store and the shared
  embeddings + records (``--results-url``-style ``s3://`` URL);
- a ``dask scheduler`` with two ``dask worker`` processes (1 thread, 2 GB each, the tasks'
  modules preloaded);
- a Prefect server (on a copy of the session's migrated database template), the two
  deployments of deployments/prefect.yaml, a worker on the ``ssl-eval-process`` pool (``--run-once``) and one on the ``ssl-eval-gpu`` pool;
- an ``mlflow server``.

A digits store of 5 checkpoints is evaluated end to end, and the test shows where each
part ran: embedding in the GPU pool's flow run, the metric tasks on both Dask workers,
results in S3 (identical to the embedded default's), and MLflow points on the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prefect.workers.process import ProcessWorker

from deployments import database_template
from tests.helpers import assert_same_values, free_port, make_store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DATA = {"name": "digits", "n_eval": 200, "n_probe_train": 300, "n_probe_test": 200, "n_views": 0}
# What the Dask workers' tasks import (the metric, analysis, verdict and MLflow tasks, and the
# modules those import lazily), loaded while the workers wait for the flow, as a long-running
# cluster has them loaded: otherwise each worker's first task pays for them.
WORKER_PRELOAD = ("import tasks.measure, tasks.analyze, tasks.verdict, tasks.track, ssl_eval.probe, ssl_eval.reporting.figures, "
                  "sklearn.linear_model, sklearn.preprocessing, torch, s3fs")


def _wait_http(url: str, timeout: float, procs: dict, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited with {procs[name].returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{name} not healthy at {url} after {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to every process group at once, then wait for each (SIGKILL after 15 s): one slow shutdown does not hold up the others'."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        _stop(proc)


def _api(api_url: str, path: str, body: dict) -> Any:
    request = urllib.request.Request(
        f"{api_url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_store_on_s3_embedded_on_gpu_pool_measured_on_dask_workers_tracked_on_mlflow_server(tmp_path, monkeypatch,
                                                                                            prefect_template):
    ports = {name: free_port() for name in ("s3", "prefect", "mlflow", "dask")}
    s3, api = f"http://127.0.0.1:{ports['s3']}", f"http://127.0.0.1:{ports['prefect']}/api"
    mlflow_uri, scheduler = f"http://127.0.0.1:{ports['mlflow']}", f"tcp://127.0.0.1:{ports['dask']}"
    store, results_url = "s3://ckpts/store", "s3://shared/ssl-eval"
    secret = "sslEvalS3cretKey0123456789"
    aws = {"AWS_ACCESS_KEY_ID": "SSLEVALKEYID", "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3}
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SSL_EVAL_", "MLFLOW_"))}
    env.update(aws)
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "DASK_TEMPORARY_DIRECTORY": str(tmp_path / "dask"), "MPLCONFIGDIR": str(tmp_path / "mpl"),
        "PWD": str(REPO), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    })
    client_env = {
        **env, "PREFECT_API_URL": api, "SSL_EVAL_STORE": store, "SSL_EVAL_RESULTS_URL": results_url,
        "SSL_EVAL_WORKDIR": str(tmp_path / "work"), "SSL_EVAL_DASK_ADDRESS": scheduler, "MLFLOW_TRACKING_URI": mlflow_uri,
    }
    # Dask workers learn where the results live from the tasks' parameters, not their environment
    worker_env = {k: v for k, v in client_env.items() if k != "SSL_EVAL_RESULTS_URL"}
    logs: dict[str, Path] = {}
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str, args: list[str], environ: dict, cwd: Path = REPO) -> None:
        logs[name] = tmp_path / f"{name}.log"
        procs[name] = subprocess.Popen(
            args, env=environ, cwd=cwd, stdout=open(logs[name], "wb"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(name: str) -> str:
        return logs[name].read_text(errors="replace") if name in logs and logs[name].exists() else ""

    def tails() -> str:
        return "\n".join(f"--- {n}\n{log(n)[-1500:]}" for n in logs)

    try:
        database_template.seed(tmp_path / "prefect")  # a migrated database: the server skips creating one
        start("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(ports["s3"])], env)
        start("prefect-server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(ports["prefect"])],
              {**env, "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"})
        start("mlflow", [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(ports["mlflow"]), "--workers", "1",
                         "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--artifacts-destination", str(tmp_path / "mlartifacts")],
              env, cwd=tmp_path)
        start("dask-scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(ports["dask"]), "--no-dashboard"], env)
        for i in (1, 2):
            start(f"dask-worker-{i}", [str(BIN / "dask"), "worker", scheduler, "--nthreads", "1", "--memory-limit", "2GB",
                                        "--host", "127.0.0.1", "--no-dashboard", "--no-nanny", "--name", f"w{i}",
                                        "--preload", WORKER_PRELOAD], worker_env)

        _wait_http(f"{s3}/", 60, procs, "s3")
        import boto3

        s3_client = boto3.client("s3")
        for bucket in ("ckpts", "shared"):
            s3_client.create_bucket(Bucket=bucket)
        local = make_store(tmp_path / "store", {"simclr": 3, "simsiam": 2})
        (local / "ssl_eval.toml").write_text("[data]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in DATA.items()))
        for path in sorted([*local.rglob("*.ckpt"), local / "ssl_eval.toml"]):
            s3_client.upload_file(str(path), "ckpts", f"store/{path.relative_to(local).as_posix()}")

        _wait_http(f"{api}/health", 90, procs, "prefect-server")
        # the two process pools of docs/deployment.md (what `prefect work-pool create NAME --type
        # process` and `set-concurrency-limit` make, through the API: each CLI call is a cold start
        # of seconds), then the deployments from prefect.yaml with the CLI, as a user deploys them
        template = ProcessWorker.get_default_base_job_template()
        _api(api, "/work_pools/", {"name": "ssl-eval-process", "type": "process", "base_job_template": template})
        _api(api, "/work_pools/", {"name": "ssl-eval-gpu", "type": "process", "base_job_template": template, "concurrency_limit": 1})
        start("gpu-worker", [str(BIN / "prefect"), "worker", "start", "--pool", "ssl-eval-gpu"], client_env)  # starts while deploying
        done = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all"],
                              env=client_env, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        # `prefect deployment run monitor/monitor --params '{"settle_seconds": 0}'`
        (deployment,) = _api(api, "/deployments/filter", {"flows": {"name": {"any_": ["monitor"]}},
                                                           "deployments": {"name": {"any_": ["monitor"]}}})
        _api(api, f"/deployments/{deployment['id']}/create_flow_run", {"parameters": {"settle_seconds": 0}})
        start("process-worker", [str(BIN / "prefect"), "worker", "start", "--pool", "ssl-eval-process", "--run-once"], client_env)
        _wait_http(f"{mlflow_uri}/health", 60, procs, "mlflow")
        procs["process-worker"].wait(timeout=480)  # one monitor run; minutes when the machine is busy

        flows = {f["id"]: f["name"] for f in _api(api, "/flows/filter", {})}
        runs = {flows[r["flow_id"]]: r["state_type"] for r in _api(api, "/flow_runs/filter", {})}
        assert runs == {"monitor": "COMPLETED", "monitor-store": "COMPLETED", "embed-checkpoints": "COMPLETED"}, (runs, tails())

        # embedding ran in the GPU pool's flow run, not in the monitor's process
        assert "embed simclr/run-0/epoch=00" in log("gpu-worker"), tails()
        assert "embed simclr/run-0/epoch=00" not in log("process-worker"), tails()
        # the metric tasks ran on the two Dask workers: the flow saw two worker addresses, each
        # worker's own log holds measure task runs, and the flow's process ran none
        workers = log("process-worker").split("metric tasks ran on Dask worker(s): ")[1].splitlines()[0]
        assert len(workers.split(",")) == 2 and scheduler not in workers, tails()
        for i in (1, 2):
            assert "Task run 'measure " in log(f"dask-worker-{i}"), tails()
        assert "Task run 'measure " not in log("process-worker"), tails()

        # results live in S3, and equal what the embedded default computes from the local files
        from ssl_eval.config import Config, DataConfig
        from ssl_eval.pipeline.embedding import embed_checkpoint
        from ssl_eval.pipeline.evaluation import compute_part
        from ssl_eval.results.workspace import Workspace
        from ssl_eval.sources.checkpoints import discover

        shared = Workspace.at(tmp_path / "reader", results_url=results_url)
        assert len(shared.records.checkpoint_ids()) == 5
        assert shared.embeddings.read("simsiam/run-0/epoch=01", "eval").shape == (200, 128)
        config = Config(data=DataConfig(**DATA))
        default = Workspace.at(tmp_path / "default", results_url="")
        ref = next(r for r in discover(local) if r.id == "simclr/run-0/epoch=01")
        embed_checkpoint(ref, config, default)
        for part in ("metrics-clustering", "metrics-spectral", "probe"):
            compute_part(default, ref.id, part, config)
            # other processes, other BLAS thread counts: equal to a stated tolerance (docs/metrics.md)
            assert_same_values(default.records.get(ref.id, part)["values"], shared.records.get(ref.id, part)["values"])

        # MLflow: the tracking server holds one point per epoch
        from mlflow.tracking import MlflowClient

        client = MlflowClient(mlflow_uri)
        exp = client.get_experiment_by_name("ssl-eval/simclr")
        run = client.search_runs([exp.experiment_id], filter_string="tags.`ssl_eval.key` = 'simclr/run-0'")[0]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "probe/linear_acc")] == [0, 1, 2]
        # credentials never reach logs
        assert not any(secret in log(n) for n in logs), [n for n in logs if secret in log(n)]
    finally:
        _stop_all(list(procs.values()))

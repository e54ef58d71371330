"""`ssl-eval serve` for real: it starts a Prefect server on 127.0.0.1, serves the monitor
deployment on a short interval, and a checkpoint copied into the store shows up in MLflow
within two intervals; an edit of the store's ssl_eval.toml is applied by the next scheduled
run; stopping serve stops the server too."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ssl_eval.workspace import Workspace
from tests.helpers import stop_process_group, write_checkpoint

pytestmark = pytest.mark.integration

INTERVAL = 8.0
TOML = '[data]\nname = "digits"\nn_eval = 200\nn_probe_train = 300\nn_probe_test = 200\n'


def _mlflow_steps(db: Path) -> list[int]:
    if not (db.parent / "records" / "simclr" / "mlflow.json").exists():
        return []  # not synced yet: leave the database to the flow while it creates it
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("ssl-eval/simclr")
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`ssl_eval.key` = 'simclr/run-0'")
    if not runs:
        return []
    return sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, "probe/linear_acc"))


def _eval_rows(work: Path, checkpoint_id: str) -> int | None:
    """Rows of the committed eval embeddings of ``checkpoint_id`` (None before the first)."""
    provenance = Workspace(work.resolve()).embeddings.provenance(checkpoint_id)
    return None if provenance is None else int(Workspace(work.resolve()).embeddings.read(checkpoint_id, "eval").shape[0])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_picks_up_new_checkpoints_and_stops_cleanly(tmp_path):
    store, work = tmp_path / "store", tmp_path / "work"
    store.mkdir()
    (store / "ssl_eval.toml").write_text(TOML)
    write_checkpoint(store / "simclr" / "run-0" / "epoch=00.ckpt", epoch=0, seed=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    ssl_eval = Path(sys.executable).with_name("ssl-eval")
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [str(ssl_eval), "serve", str(store), "--interval", str(INTERVAL), "--workdir", str(work), "--settle-seconds", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300  # server start plus one run, on a busy 2-core machine
        while _mlflow_steps(work / "mlflow.db") != [0]:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
        # a new checkpoint lands in the store: in MLflow within two intervals (plus one run's
        # time, up to a minute and a half when the machine is busy)
        write_checkpoint(store / "simclr" / "run-0" / "epoch=01.ckpt", epoch=1, seed=1)
        os.utime(store / "simclr" / "run-0" / "epoch=01.ckpt")  # "just copied"
        added = time.monotonic()
        while _mlflow_steps(work / "mlflow.db") != [0, 1]:
            assert time.monotonic() - added < 2 * INTERVAL + 90, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
        # the store's configuration changes: the next scheduled run re-embeds with it
        (store / "ssl_eval.toml").write_text(TOML.replace("n_eval = 200", "n_eval = 150"))
        edited = time.monotonic()
        while _eval_rows(work, "simclr/run-0/epoch=00") != 150:
            assert time.monotonic() - edited < 2 * INTERVAL + 90, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
        server_log = (work / "prefect" / "server.log").read_text()
        assert "127.0.0.1" in (tmp_path / "serve.log").read_text()
        port = int((tmp_path / "serve.log").read_text().split("Prefect server on http://127.0.0.1:")[1].split()[0])
        assert _listening(port), server_log[-2000:]
        # the UI served there finds its API there (not on Prefect's default port 4200)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=10) as response:
            assert json.loads(response.read())["api_url"] == f"http://127.0.0.1:{port}/api"
        text = (tmp_path / "serve.log").read_text()
        assert f"export PREFECT_API_URL=http://127.0.0.1:{port}/api" in text and "prefect deployment run 'monitor/monitor'" in text
    finally:
        stop_process_group(proc)
        log.close()
    assert not _listening(port)
    text = (tmp_path / "serve.log").read_text()
    assert "stopping" in text and proc.returncode == 130, text[-3000:]  # Ctrl-C is acknowledged, exit code 130
    # nothing was evaluated twice: one embedding per checkpoint, one point per epoch
    assert _mlflow_steps(work / "mlflow.db") == [0, 1]

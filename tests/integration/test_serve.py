"""`ssl-eval serve` for real, one served store for the whole module (a start costs a server, a deployment and a run).

It starts a Prefect server on 127.0.0.1 and serves the monitor deployment on a short interval; a
checkpoint copied into the store and an edit of the store's ssl_eval.toml are both applied by the
next scheduled run (the checkpoint shows up in MLflow within two intervals); a second serve on the
work dir is refused at once, naming the first; the Prefect UI at the address serve prints reaches
its own API (headless Chromium, tests/browser.py); Ctrl-C stops serving and the server with it.

The tests share the served process and run in file order: the last one stops it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ssl_eval.results.workspace import Workspace
from tests.browser import find_chromium
from tests.helpers import stop_process_group, wait_for, write_checkpoint

pytestmark = pytest.mark.integration

INTERVAL = 8.0
TOML = '[data]\nname = "digits"\nn_eval = 200\nn_probe_train = 300\nn_probe_test = 200\n'
# What a person sees when the Prefect UI cannot reach its API
NO_API = "Can't connect to Server API"


@dataclass
class Served:
    proc: subprocess.Popen
    store: Path
    work: Path
    log: Path
    port: int

    def text(self) -> str:
        return self.log.read_text(errors="replace")


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
    embeddings = Workspace(work.resolve()).embeddings
    return None if embeddings.provenance(checkpoint_id) is None else int(embeddings.read(checkpoint_id, "eval").shape[0])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(served: Served, condition, timeout: float, what: str) -> None:
    wait_for(condition, timeout, what, proc=served.proc, log=served.log)


@pytest.fixture(scope="module")
def served(tmp_path_factory, prefect_template):
    """`ssl-eval serve` of a store holding one checkpoint, every INTERVAL seconds.

    Its server starts from the session's Prefect database template, SSL_EVAL_CACHE_DIR.
    """
    root = tmp_path_factory.mktemp("served")
    store, work, log_path = root / "store", root / "work", root / "serve.log"
    store.mkdir()
    (store / "ssl_eval.toml").write_text(TOML)
    write_checkpoint(store / "simclr" / "run-0" / "epoch=00.ckpt", epoch=0, seed=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    # the runner looks for due runs every 2 s, not every 10 s: each scheduled run starts sooner
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "2"
    ssl_eval = Path(sys.executable).with_name("ssl-eval")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(ssl_eval), "serve", str(store), "--interval", str(INTERVAL), "--workdir", str(work), "--settle-seconds", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    served = Served(proc, store, work, log_path, port=0)
    try:
        _wait(served, lambda: "Prefect server on http://127.0.0.1:" in served.text(), 300, "no Prefect server")
        served.port = int(re.search(r"Prefect server on http://127\.0\.0\.1:(\d+)", served.text()).group(1))
        yield served
    finally:
        stop_process_group(proc)


def test_serve_applies_new_checkpoints_and_store_edits_on_schedule(served):
    # server start plus one run, on a busy 2-core machine
    _wait(served, lambda: _mlflow_steps(served.work / "mlflow.db") == [0], 300, "epoch 0 not in MLflow")
    # a new checkpoint lands in the store and its ssl_eval.toml changes: the next scheduled run
    # evaluates the checkpoint (in MLflow within two intervals, plus a run's time: up to two
    # minutes when the machine is busy) and re-embeds the old one with the new settings
    (served.store / "ssl_eval.toml").write_text(TOML.replace("n_eval = 200", "n_eval = 150"))
    write_checkpoint(served.store / "simclr" / "run-0" / "epoch=01.ckpt", epoch=1, seed=1)
    os.utime(served.store / "simclr" / "run-0" / "epoch=01.ckpt")  # "just copied"
    _wait(served, lambda: (
        _mlflow_steps(served.work / "mlflow.db") == [0, 1]
        and _eval_rows(served.work, "simclr/run-0/epoch=00") == 150 and _eval_rows(served.work, "simclr/run-0/epoch=01") == 150
    ), 2 * INTERVAL + 150, "epoch 1 not in MLflow or the edit not applied")
    assert _listening(served.port), (served.work / "prefect" / "server.log").read_text()[-2000:]
    # the UI served there finds its API there (not on Prefect's default port 4200)
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/ui-settings", timeout=10) as response:
        assert json.loads(response.read())["api_url"] == f"http://127.0.0.1:{served.port}/api"
    text = served.text()
    assert f"export PREFECT_API_URL=http://127.0.0.1:{served.port}/api" in text and "prefect deployment run 'monitor/monitor'" in text


def test_a_second_serve_on_the_work_dir_is_refused_at_once_naming_the_first(served):
    ssl_eval = Path(sys.executable).with_name("ssl-eval")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    started = time.monotonic()
    second = subprocess.run([str(ssl_eval), "serve", str(served.store), "--workdir", str(served.work)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"error: another ssl-eval serve, pid {served.proc.pid} (" in second.stderr
    assert f"ssl-eval serve {served.store} --interval" in second.stderr and "Nothing was started." in second.stderr
    assert "Prefect server" not in second.stdout and time.monotonic() - started < 60  # no server was started
    assert served.proc.poll() is None  # the first one goes on (the Ctrl-C test below stops it as usual)


@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is missing (apt-get install -y chromium)")
def test_the_prefect_ui_that_serve_prints_reaches_its_own_api(served, browser):
    address = f"http://127.0.0.1:{served.port}"
    text = browser.open(f"{address}/deployments", wait_for=("monitor",), timeout=120)
    assert NO_API not in text
    text = browser.open(f"{address}/runs", wait_for=("Flow runs", "monitor"), timeout=120)
    assert NO_API not in text


def test_ctrl_c_stops_serving_and_its_server(served):
    code = stop_process_group(served.proc)
    text = served.text()
    assert "stopping" in text and code == 130, text[-3000:]  # Ctrl-C is acknowledged, exit code 130
    assert not _listening(served.port)
    # nothing was evaluated twice: one point per epoch
    assert _mlflow_steps(served.work / "mlflow.db") == [0, 1]

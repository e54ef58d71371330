"""The temporary Prefect server that `ssl-eval evaluate` starts never outlives it, even when the command is killed with SIGKILL (no handler runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from deployments.lifetime import reap, start_reaper
from tests.helpers import make_store, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_reaper_ends_the_children_of_a_killed_process_and_nothing_else():
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)'])\n"
        "time.sleep(120)")])
    try:
        deadline = time.time() + 60
        while not psutil.Process(parent.pid).children() and time.time() < deadline:
            time.sleep(0.2)
        child = psutil.Process(parent.pid).children()[0]
        killer = subprocess.Popen([sys.executable, "-c", f"import os, time, signal; time.sleep(3); os.kill({parent.pid}, signal.SIGKILL)"])
        reaped = reap(parent.pid, interval=0.2, grace=2.0)
        killer.wait()
        assert reaped == [child.pid]
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
        assert bystander.poll() is None  # never a process that was not the parent's
    finally:
        bystander.kill()
        parent.kill()
        parent.wait()


def test_one_reaper_per_process_however_many_commands_it_runs():
    first = start_reaper()
    assert start_reaper() is first and first.poll() is None
    # its command line is readable once its exec is through (empty for a moment after Popen returns:
    # seen on a loaded machine)
    cmdline = wait_for(lambda: psutil.Process(first.pid).cmdline(), 30, "the reaper's command line")
    assert cmdline[-2:] == [str(os.getpid()), "0.5"]  # it watches this process


def test_kill_9_of_evaluate_leaves_no_prefect_server(tmp_path):
    store = make_store(tmp_path / "store", {"simclr": 1})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_", "MPLCONFIGDIR", "MLFLOW_"))}
    env["PYTHONPATH"] = str(ROOT)
    cli = subprocess.Popen(
        [sys.executable, "-m", "ssl_eval.cli", "evaluate", str(store), "--workdir", str(tmp_path / "w"), "--dataset", "digits", "--quiet"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline, server = time.time() + 600, None
        while server is None and time.time() < deadline and cli.poll() is None:
            for child in psutil.Process(cli.pid).children(recursive=True):
                try:
                    if "uvicorn" in " ".join(child.cmdline()):
                        server = child
                except psutil.Error:
                    continue
            time.sleep(0.5)
        assert server is not None, "the temporary Prefect server never started"
        time.sleep(1.0)  # the reaper has seen it
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait()
        gone, _ = psutil.wait_procs([server], timeout=30)
        assert gone, f"Prefect server {server.pid} outlived the killed command"
    finally:
        if cli.poll() is None:
            cli.kill()

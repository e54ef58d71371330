"""One `ssl-eval serve` per work dir (ssl_eval/results/serve_lock.py), checked with a stand-in holder process.

The check is the command's pre-start step; no Prefect server is started here (the real second serve
beside a real one is tests/integration/test_serve.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

import ssl_eval.cli.monitor as monitor_cli
from ssl_eval.cli import app
from ssl_eval.results.serve_lock import serving

HOLD = """
import sys, time
from pathlib import Path
from ssl_eval.results.serve_lock import hold_serve_lock
with hold_serve_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """A process holding the work dir ``tmp_path / "w"`` as a serve does (killed at the end)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "w")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def _nothing_may_start(*args, **kwargs):
    raise AssertionError("the command went past its pre-start check")


def test_a_second_serve_is_refused_at_once_naming_the_first_and_evaluate_goes_on_beside_it(tmp_path, holder, monkeypatch):
    work = tmp_path / "w"
    monkeypatch.setattr(monitor_cli, "flow_parameters", _nothing_may_start)
    refused = CliRunner().invoke(app, ["serve", str(tmp_path), "--workdir", str(work)])
    assert refused.exit_code == 2, refused.output
    assert f"error: another ssl-eval serve, pid {holder.pid} (" in refused.output
    assert f"{sys.executable} -c '\\x0aimport sys, time\\x0a" in refused.output  # its command, newlines escaped
    assert " since 20" in refused.output and f"serves the work dir {work}" in refused.output
    assert "Nothing was started." in refused.output and "Traceback" not in refused.output
    assert holder.poll() is None and serving(work).pid == holder.pid  # the first serve is untouched
    # evaluate is told, and goes on to its own checks (here: a store that does not exist)
    monkeypatch.undo()
    beside = CliRunner().invoke(app, ["evaluate", str(tmp_path / "missing"), "--workdir", str(work)])
    assert beside.exit_code == 2 and f"note: ssl-eval serve, pid {holder.pid} (" in beside.output
    assert "does not exist" in beside.output and serving(work).pid == holder.pid


def test_a_killed_serve_leaves_a_stale_holder_that_the_next_serve_takes_over(tmp_path, holder, monkeypatch):
    work = tmp_path / "w"
    holder.kill()  # kill -9: no handler runs, the holder file stays behind
    holder.wait()
    assert json.loads((work / "locks" / "serve.json").read_text())["pid"] == holder.pid
    assert serving(work) is None  # it names a process that is gone
    seen = []

    def next_step(*args, **kwargs):
        seen.append(serving(work))
        raise typer.Exit(0)

    monkeypatch.setattr(monitor_cli, "flow_parameters", next_step)
    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--workdir", str(work)])
    assert result.exit_code == 0, result.output
    assert seen[0] is not None and seen[0].pid == os.getpid()  # held by this serve past its pre-start check
    assert serving(work) is None and not (work / "locks" / "serve.json").exists()  # given back when the command ended

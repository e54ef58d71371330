"""The temporary Prefect server `ssl-eval evaluate` launches before importing the flows.

It is healthy, the process's Prefect settings point at it inside the block and are restored after
it, and it is stopped on leaving; the first server leaves its migrated database as the template a
second work dir's server starts from.

The scenario runs in a fresh interpreter with no PREFECT_* variable: in the test process a
session's ``prefect_test_harness`` (tests/conftest.py) may already be the configured API, and
then no server is launched, by design.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parents[2]


def scenario(tmp_path: Path) -> None:
    """What the test checks, run in the child (plain asserts: a failure exits non-zero)."""
    from prefect import flow
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    from deployments import database_template, server

    launched = []
    real_launch = server._launch

    def launch(port: int, log: BinaryIO) -> subprocess.Popen[bytes]:
        launched.append(real_launch(port, log))
        return launched[-1]

    server._launch = launch

    @flow
    def add(a: int, b: int) -> int:
        return a + b

    with server.temporary_api(tmp_path / "prefect" / "server.log", timeout=300) as ready:
        assert len(launched) == 1 and PREFECT_API_URL.value() is None, (launched, PREFECT_API_URL.value())  # launched, not yet in use
        ready()
        url = PREFECT_API_URL.value()
        assert url and url.startswith("http://127.0.0.1:") and os.environ["PREFECT_API_URL"] == url
        with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
            assert response.status == 200
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None  # no heartbeat thread holds a run's end
        assert add(2, 3) == 5
    assert "PREFECT_API_URL" not in os.environ and PREFECT_API_URL.value() is None
    assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is not None  # restored
    assert launched[0].poll() is not None  # stopped
    try:
        urllib.request.urlopen(f"{url}/health", timeout=5)
    except OSError:
        pass
    else:
        raise AssertionError(f"the temporary server still answers at {url} after the block")
    assert (tmp_path / "prefect" / "prefect.db").exists()  # in PREFECT_HOME, where Prefect's own server puts it

    # the first server saved its migrated database, before the flow ran: Prefect's tables, no run
    template = database_template.template_path()
    with sqlite3.connect(template) as db:
        assert db.execute("SELECT count(*) FROM flow_run").fetchone()[0] == 0
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    # a new work dir's server starts from a copy of it and serves flows as before
    os.environ["PREFECT_HOME"] = str(tmp_path / "second")
    with server.temporary_api(tmp_path / "second" / "server.log", timeout=300) as ready:
        assert (tmp_path / "second" / "prefect.db").exists()  # seeded before the server started
        ready()
        assert add(2, 3) == 5


def test_temporary_api_serves_a_flow_and_stops(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false", SSL_EVAL_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    code = f"from pathlib import Path; from tests.integration.test_temporary_server import scenario; scenario(Path({str(tmp_path)!r}))"
    child = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-5000:]

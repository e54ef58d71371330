"""The temporary Prefect server `ssl-eval evaluate` launches before importing the flows:
healthy, the process's Prefect settings point at it inside the block and are restored after
it, and it is stopped on leaving."""

from __future__ import annotations

import os
import urllib.request

import pytest


def test_temporary_api_serves_a_flow_and_stops(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("PREFECT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect import flow
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL

    from deployments import temporary_server

    refresh_global_settings_context()
    launched = []
    real_launch = temporary_server._launch
    monkeypatch.setattr(temporary_server, "_launch", lambda port, log: launched.append(real_launch(port, log)) or launched[-1])

    @flow
    def add(a: int, b: int) -> int:
        return a + b

    with temporary_server.temporary_api(tmp_path / "prefect" / "server.log", timeout=300) as ready:
        assert len(launched) == 1 and PREFECT_API_URL.value() is None  # launched, not yet in use
        ready()
        url = PREFECT_API_URL.value()
        assert url and url.startswith("http://127.0.0.1:") and os.environ["PREFECT_API_URL"] == url
        with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
            assert response.status == 200
        assert add(2, 3) == 5
    assert "PREFECT_API_URL" not in os.environ and PREFECT_API_URL.value() is None
    assert launched[0].poll() is not None  # stopped
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/health", timeout=5)
    assert (tmp_path / "prefect" / "prefect.db").exists()  # in PREFECT_HOME, where Prefect's own server puts it

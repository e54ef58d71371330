"""The MLflow UI a researcher opens, loaded in headless Chromium (tests/browser.py).

`ssl-eval ui` opens a family experiment in MLflow's classic runs view, not its GenAI view (the
Prefect UI that `ssl-eval serve` prints is checked in test_serve.py, on its served store). Skipped
where Chromium is missing (`apt-get install -y chromium`); docs/ui_check.py is the longer check,
with screenshots of every page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ssl_eval.analysis import store_family_analysis
from ssl_eval.cli.ui import has_ui_app
from ssl_eval.config import Config, VerdictConfig
from ssl_eval.verdict.records import store_verdict
from tests.browser import find_chromium
from tests.helpers import free_port, stop_process_group, synthetic_workspace, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is missing (apt-get install -y chromium)"),
]

# What a person sees when MLflow shows its GenAI panels
GENAI_PANELS = ("No data available for the selected time range", "Latency", "Token Usage")


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    with open(log, "wb") as out:
        return subprocess.Popen([str(Path(sys.executable).with_name("ssl-eval")), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_ssl_eval_ui_opens_a_family_experiment_in_the_classic_runs_view(tmp_path, browser, mlflow_store):
    if not has_ui_app():
        pytest.skip("ssl-eval is not installed with its entry points (pip install -e .)")
    from ssl_eval.integrations.mlflow_mirror import sync_family

    ws = synthetic_workspace(tmp_path / "work", epochs=3, runs=1)
    mlflow_store(ws.root / "mlflow.db")
    for family in ("simclr", "simsiam"):
        store_verdict(ws, family, store_family_analysis(ws, family), Config(verdict=VerdictConfig(window=3)))
        sync_family(ws, family, tracking_uri=ws.mlflow_uri, figures=False)  # as `ssl-eval evaluate` leaves it
    base, log = f"http://127.0.0.1:{free_port()}", tmp_path / "ui.log"
    ui = _start(["ui", "--workdir", str(ws.root), "--port", base.rsplit(":", 1)[1]], log)
    try:
        wait_for(lambda: _answers(f"{base}/health") or None, 300, "the MLflow UI answers", proc=ui, log=log)
        assert "drew the figures of 2 families" in log.read_text()  # where someone looks, before the UI opens
        # a browser new to this MLflow (its own origin: nothing stored), reaching the experiment
        # by clicking it in the list, as a person does
        browser.open(f"{base}/#/experiments", wait_for=("ssl-eval/simclr", "ssl-eval/_summary"), timeout=120)
        assert browser.click_text("ssl-eval/simclr")
        text = browser.wait_until(("Run Name", "simclr/run-0", "simclr/correlations"), timeout=120)
        assert not [panel for panel in GENAI_PANELS if panel in text], text[:2000]
        verdict = ws.records.get("simclr", "verdict")["summary"]
        assert verdict[:40] in text  # the experiment's description: its verdict, above the runs
    finally:
        stop_process_group(ui)

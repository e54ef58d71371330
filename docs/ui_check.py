"""What a researcher sees in the first hour, checked in a real browser (docs/first_hour.md).

Writes a tiny checkpoint store (untrained DemoCNNs on scikit-learn's digits), then:

1. starts ``ssl-eval serve`` as a user would, reads the Prefect address it prints, checks
   that the UI's ``/ui-settings`` names that address (not port 4200), waits for the first
   scheduled run, and screenshots the Prefect UI's dashboard and runs pages;
2. starts a second run with the ``prefect deployment run`` command that serve prints, sends
   Ctrl-C (SIGINT to serve's process group, as a terminal does) while that run is in flight,
   and times how long serve takes to exit and what it says;
3. starts ``ssl-eval ui`` on the same work dir, checks every experiment's
   ``mlflow.experimentKind`` tag and run names, and screenshots a family experiment and the
   summary experiment in MLflow's UI.

Screenshots go to ``--out`` (PNG); look at them. Needs Chromium (``apt-get install -y
chromium``). Nothing is downloaded; every server listens on 127.0.0.1 and is stopped.

    python docs/ui_check.py --out ui-check
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--hide-scrollbars", "--window-size=1500,950", "--virtual-time-budget=15000",
)


def write_store(store: Path, families=("simclr", "simsiam"), epochs: int = 3) -> None:
    import torch

    from ssl_eval.models import DemoCNN

    for f_index, family in enumerate(families):
        for epoch in range(epochs):
            torch.manual_seed(100 * f_index + epoch)
            state = {f"backbone.{k}": v for k, v in DemoCNN(in_channels=1).state_dict().items()}
            path = store / family / "run-0" / f"epoch={epoch:02d}.ckpt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"epoch": epoch, "method": family, "arch": "democnn", "state_dict": state}, path)
            old = time.time() - 60
            os.utime(path, (old, old))
    (store / "ssl_eval.toml").write_text('[data]\nname = "digits"\nn_eval = 200\nn_probe_train = 300\nn_probe_test = 200\n')


def get_json(url: str, data: dict | None = None) -> object:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(what: str, check, timeout: float, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(1)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what}: not after {timeout:.0f} s\n{tail}")


def screenshot(chromium: str, url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="ui-check-chromium-") as profile:
        subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url],
            check=True, timeout=180, capture_output=True,
        )
    print(f"  screenshot {out.name}: {url}")


def flow_runs(api: str) -> list[dict]:
    return get_json(f"{api}/flow_runs/filter", {"sort": "START_TIME_DESC", "limit": 20})  # type: ignore[return-value]


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> float:
    started = time.monotonic()
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("ui-check"), help="Folder for the screenshots and logs.")
    parser.add_argument("--mlflow-port", type=int, default=5071, help="Port of the MLflow UI started here.")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is missing: apt-get install -y chromium")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ui-check-"))
    store, workdir = work / "store", work / "work"
    write_store(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    ssl_eval = [sys.executable, "-m", "ssl_eval.cli"]
    results: list[tuple[str, str]] = []

    # 1. serve, its Prefect UI
    serve_log = out / "serve.log"
    serve = subprocess.Popen([*ssl_eval, "serve", str(store), "--workdir", str(workdir), "--interval", "3600"],
                             env=env, stdout=open(serve_log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        address = wait_for("serve prints its Prefect address",
                           lambda: re.search(r"Prefect server on (http://127\.0\.0\.1:\d+)", serve_log.read_text()), 900, serve_log).group(1)
        api = f"{address}/api"
        ui_api = get_json(f"{address}/ui-settings")["api_url"]  # type: ignore[index]
        results.append(("Prefect UI's /ui-settings api_url", f"{ui_api} ({'matches' if ui_api == api else 'WRONG: served at ' + api})"))
        first = wait_for("the first scheduled run completes",
                         lambda: [r for r in flow_runs(api) if r["state_type"] == "COMPLETED"], 900, serve_log)[0]
        results.append(("first scheduled run", f"{first['name']}: {first['state_name']}"))
        screenshot(chromium, f"{address}/dashboard", out / "prefect_dashboard.png")
        screenshot(chromium, f"{address}/runs", out / "prefect_runs.png")
        screenshot(chromium, f"{address}/runs/flow-run/{first['id']}", out / "prefect_flow_run.png")

        # 2. a second run, started with the printed command, then Ctrl-C while it runs
        hint = re.search(r"export PREFECT_API_URL=(\S+)\s+prefect deployment run '([^']+)'", serve_log.read_text())
        results.append(("serve prints how to start a run", "yes" if hint and hint.group(1) == api else "NO"))
        prefect = str(Path(sys.executable).with_name("prefect"))
        subprocess.run([prefect, "deployment", "run", hint.group(2) if hint else "monitor/monitor"],
                       env={**env, "PREFECT_API_URL": api}, check=True, capture_output=True, timeout=300)
        wait_for("the second run is running", lambda: [r for r in flow_runs(api) if r["state_type"] == "RUNNING"], 600, serve_log)
        time.sleep(3)
        seconds = stop_group(serve, signal.SIGINT, timeout=120)
        said = [line for line in serve_log.read_text().splitlines() if line.startswith("stopping")]
        results.append(("Ctrl-C during a run: serve exited after", f"{seconds:.1f} s, exit code {serve.returncode}"))
        results.append(("Ctrl-C: what serve said", " | ".join(said) or "NOTHING"))
    finally:
        if serve.poll() is None:  # Ctrl-C first, so serve stops its Prefect server; SIGKILL after 120 s
            stop_group(serve, signal.SIGINT, timeout=120)

    # 3. the MLflow UI over the same work dir
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiments = [e for e in client.search_experiments() if e.name.startswith("ssl-eval/")]
    kinds = {e.name: e.tags.get("mlflow.experimentKind") for e in experiments}
    results.append(("experiments and their mlflow.experimentKind", json.dumps(kinds)))
    names = [r.info.run_name for e in experiments for r in client.search_runs([e.experiment_id])]
    results.append(("run names (unique across experiments?)", f"{sorted(names)} ({'yes' if len(names) == len(set(names)) else 'NO'})"))
    ui_log = out / "mlflow_ui.log"
    ui = subprocess.Popen([*ssl_eval, "ui", "--workdir", str(workdir), "--port", str(args.mlflow_port)],
                          env=env, stdout=open(ui_log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{args.mlflow_port}"
        wait_for("the MLflow UI answers", lambda: urllib.request.urlopen(f"{base}/health", timeout=5).status == 200, 180, ui_log)
        by_name = {e.name: e.experiment_id for e in experiments}
        screenshot(chromium, f"{base}/#/experiments/{by_name['ssl-eval/simclr']}", out / "mlflow_family.png")
        screenshot(chromium, f"{base}/#/experiments/{by_name['ssl-eval/summary']}", out / "mlflow_summary.png")
        run0 = client.search_runs([by_name["ssl-eval/simclr"]], filter_string="attributes.run_name = 'simclr/run-0'")
        if run0:
            screenshot(chromium, f"{base}/#/experiments/{by_name['ssl-eval/simclr']}/runs/{run0[0].info.run_id}",
                       out / "mlflow_run.png")
    finally:
        stop_group(ui)
    width = max(len(k) for k, _ in results)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in results))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Prefect UI of ``ssl-eval serve`` and the MLflow UI of ``ssl-eval ui``, opened in headless Chromium.

As a researcher would meet them in their first hour (docs/first_hour.md).

1. ``ssl-eval make-demo-store`` writes a tiny store (SimCLR and SimSiam, a DemoCNN trained for
   2 epochs on 64 of scikit-learn's digits: 3 checkpoints each); ``ssl-eval evaluate`` runs
   on it at small sizes;
2. ``ssl-eval serve`` starts its temporary Prefect server (same work dir, so the evaluate
   run is there) and ``ssl-eval ui`` the MLflow UI, both on 127.0.0.1;
3. one headless Chromium opens the Prefect UI's flow runs page, the evaluate run's page
   (Artifacts tab: the verdicts), one verdict artifact, the deployments page; the MLflow
   UI's experiments list, a family experiment reached by clicking it (the runs table, in
   the classic view), a training run (its metrics), the family's correlations run (its
   verdict first) and the summary experiment; every page's screenshot is saved;
4. every server is stopped (Ctrl-C, as a terminal sends it), the temporary folder removed.

Each page is checked for what a person would trip over (the UI not reaching its API, the
GenAI view, error text), and a table says what was checked; exit 1 if anything failed.
Look at the screenshots too. Needs Debian's Chromium (``apt-get install -y chromium``);
nothing is downloaded. About 4-8 minutes on 2 busy cores, most of it ``evaluate``.

    python docs/ui_check.py --out ui-check
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import Chromium, PageNotReady, find_chromium  # noqa: E402, TID251 - a clone's check: the root joins sys.path above

SIZES = ["--dataset", "digits", "--n-eval", "200", "--n-probe-train", "300", "--n-probe-test", "200"]
# Text that means a person is stuck: the Prefect UI without its API, MLflow's GenAI panels, errors.
TROUBLE = ("Can't connect to Server API", "No data available for the selected time range", "Something went wrong",
           "Internal Server Error", "Traceback")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(url: str, body: dict | None = None):
    """The decoded JSON answer of ``url`` (GET, or POST of ``body`` as JSON)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310 - 127.0.0.1
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - the servers this script started
        return json.loads(response.read())


def wait_for(what: str, check, timeout: float, log: Path | None = None):
    """Poll ``check`` until it gives a true value (returned); after ``timeout`` s, TimeoutError naming ``what`` and the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except OSError:
            pass
        time.sleep(1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what}: not within {timeout:.0f} s\n{tail}")


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A command in its own process group (so Ctrl-C reaches all of it), output to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603 - the argv this script builds (our interpreter)


def stop(process: subprocess.Popen, timeout: float = 90) -> int:
    """Ctrl-C to the process group, as a terminal sends it; SIGKILL after ``timeout`` s."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
    return process.returncode


class Checks:
    """The checks made so far, printed as they are made."""
    def __init__(self):
        self.rows: list[tuple[str, bool, str]] = []

    def add(self, what: str, ok: bool, detail: str = "") -> None:
        """Record and print one check."""
        self.rows.append((what, bool(ok), detail))
        print(f"  {'ok ' if ok else 'BAD'} {what}{': ' + detail if detail else ''}", flush=True)

    def page(self, browser: Chromium, name: str, url: str, out: Path, wait_for=(), absent=TROUBLE, click: str = "",
             then_wait=(), scroll_to: str = "", timeout: float = 90) -> str:
        """Open ``url``, screenshot it to ``out/name.png`` and check that none of ``absent`` shows.

        Before the screenshot, click ``click`` and wait for ``then_wait``, and scroll to
        ``scroll_to``, where given. A page that does not get ready is a failed check, not an error.

        Returns:
            The page's text.
        """  # noqa: DOC501 - PageNotReady is raised and caught here: a failed check, not an error
        try:
            text = browser.open(url, wait_for=wait_for, timeout=timeout)
            if click:
                if not browser.click_text(click):
                    raise PageNotReady(url, f"something to click named {click!r}", text)
                text = browser.wait_until(then_wait, timeout=timeout)
        except PageNotReady as exc:
            text = exc.text
            self.add(f"{name}: loads", False, str(exc).splitlines()[0])
        if scroll_to:
            browser.scroll_to(scroll_to)
        browser.screenshot(out / f"{name}.png")
        found = [t for t in absent if t in text]
        self.add(f"{name}: {', '.join(map(repr, (wait_for,) if isinstance(wait_for, str) else wait_for)) or 'loads'}"
                 + (f" after clicking {click!r}" if click else ""), not found, f"shows {found}" if found else "")
        return text


def main() -> int:
    """Parse the command line, start the servers, open and check every page; the exit code says whether all passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("ui-check"), help="Folder for the screenshots and the servers' logs.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary store and work dir (their path is printed).")
    args = parser.parse_args()
    if find_chromium() is None:
        sys.exit("Chromium is missing: apt-get install -y chromium")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ssl-eval-ui-check-"))
    store, workdir = work / "store", work / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    ssl_eval = [sys.executable, "-m", "ssl_eval.cli"]
    checks = Checks()
    started = time.monotonic()

    print(f"1. a tiny demo store and its evaluation in {work}", flush=True)
    subprocess.run([*ssl_eval, "make-demo-store", "--out", str(store), "--dataset", "digits", "--epochs", "2",  # noqa: S603 - our interpreter, a fixed argv
                    "--n-train", "64", "--methods", "simclr,simsiam"], env=env, check=True, capture_output=True, timeout=900)
    evaluated = subprocess.run([*ssl_eval, "evaluate", str(store), "--workdir", str(workdir), "--quiet", *SIZES],  # noqa: S603 - our interpreter, a fixed argv
                               env={**env, "COLUMNS": "100"}, capture_output=True, text=True, timeout=1800)
    (out / "evaluate.log").write_text(evaluated.stdout + evaluated.stderr)
    checks.add("ssl-eval evaluate exits 0", evaluated.returncode == 0, evaluated.stdout.strip().splitlines()[-1][:150])

    print("2. ssl-eval serve (its Prefect server) and ssl-eval ui (MLflow)", flush=True)
    mlflow_port = free_port()
    serve = start([*ssl_eval, "serve", str(store), "--workdir", str(workdir), "--interval", "3600", *SIZES], env, out / "serve.log")
    ui = start([*ssl_eval, "ui", "--workdir", str(workdir), "--port", str(mlflow_port)], env, out / "mlflow_ui.log")
    try:
        prefect = wait_for("serve prints its Prefect address", lambda: re.search(
            r"Prefect server on (http://127\.0\.0\.1:\d+)", (out / "serve.log").read_text()), 600, out / "serve.log").group(1)
        settings = api(f"{prefect}/ui-settings")
        checks.add("the Prefect UI's /ui-settings names the served API", settings["api_url"] == f"{prefect}/api", settings["api_url"])
        run = wait_for("the evaluate run in serve's Prefect server", lambda: api(f"{prefect}/api/flow_runs/filter", {
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}, "sort": "START_TIME_DESC", "limit": 1}), 120)[0]
        artifacts = api(f"{prefect}/api/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}, "sort": "KEY_ASC"})
        verdicts = {a["key"]: a for a in artifacts if a["key"] and a["key"].startswith("correlations-")}
        checks.add("the evaluate run holds one verdict artifact per family",
                   sorted(verdicts) == ["correlations-simclr", "correlations-simsiam"], ", ".join(sorted(verdicts)))
        card = re.sub(r"\\(.)", r"\1", (verdicts.get("correlations-simclr") or {}).get("description") or "")  # as shown
        mlflow = f"http://127.0.0.1:{mlflow_port}"
        wait_for("the MLflow UI answers", lambda: urllib.request.urlopen(f"{mlflow}/health", timeout=5).status == 200, 300,  # noqa: S310 - 127.0.0.1
                 out / "mlflow_ui.log")
        from mlflow.tracking import MlflowClient

        from ssl_eval.results.workspace import Workspace

        client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
        experiments = {e.name: e.experiment_id for e in client.search_experiments()}
        simclr_verdict = client.get_experiment(experiments["ssl-eval/simclr"]).tags.get("mlflow.note.content", "")
        checks.add("MLflow: the simclr experiment's description is its verdict", simclr_verdict.startswith(
            Workspace.at(workdir).records.get("simclr", "verdict")["summary"][:60]), simclr_verdict[:90])
        runs = {r.info.run_name: r.info.run_id for r in client.search_runs([experiments["ssl-eval/simclr"]])}

        print("3. the pages, in headless Chromium", flush=True)
        with Chromium() as browser:
            checks.page(browser, "prefect_1_runs", f"{prefect}/runs", out, wait_for=run["name"])
            text = checks.page(browser, "prefect_2_flow_run_artifacts", f"{prefect}/runs/flow-run/{run['id']}", out,
                               wait_for="Artifacts", click="Artifacts", then_wait=("correlations-simclr", card[:40]),
                               scroll_to="correlations-simclr")
            checks.add("the run's Artifacts tab shows each family's verdict on its card", bool(card) and card[:40] in text, card)
            artifact = verdicts.get("correlations-simclr", {}).get("id", "")
            checks.page(browser, "prefect_3_verdict_artifact", f"{prefect}/artifacts/artifact/{artifact}", out,
                        wait_for=("simclr: verdict", "keep"))
            checks.page(browser, "prefect_4_deployments", f"{prefect}/deployments", out, wait_for=("monitor", "Ready"))
            checks.page(browser, "mlflow_1_experiments", f"{mlflow}/#/experiments", out,
                        wait_for=("ssl-eval/simclr", "ssl-eval/_summary", simclr_verdict[:40]))
            text = checks.page(browser, "mlflow_2_family_runs", f"{mlflow}/#/experiments", out, wait_for="ssl-eval/simclr",
                               click="ssl-eval/simclr", then_wait=("simclr/run-0", "simclr/correlations", "Run Name"))
            checks.add("a family experiment opens in the classic runs view", "Run Name" in text and "Latency" not in text)
            checks.page(browser, "mlflow_3_run_metrics", f"{mlflow}/#/experiments/{experiments['ssl-eval/simclr']}/runs/"
                        f"{runs.get('simclr/run-0', '')}", out, wait_for=("simclr/run-0", "probe/linear_acc", "data.n_eval"))
            checks.page(browser, "mlflow_4_correlations_run", f"{mlflow}/#/experiments/{experiments['ssl-eval/simclr']}/runs/"
                        f"{runs.get('simclr/correlations', '')}", out, wait_for=("simclr/correlations", simclr_verdict[:40]))
            checks.page(browser, "mlflow_5_summary", f"{mlflow}/#/experiments/{experiments['ssl-eval/_summary']}", out,
                        wait_for=("simclr/summary", "simsiam/summary", "Run Name"))
            checks.page(browser, "mlflow_6_summary_charts", f"{mlflow}/#/experiments/{experiments['ssl-eval/_summary']}"
                        "/runs?compareRunsMode=CHART", out, wait_for=("simclr/summary", "probe/best_linear_acc"))
    finally:
        print("4. stopping every server", flush=True)
        ui_code, serve_code = stop(ui), stop(serve)
    checks.add("ssl-eval serve stops on Ctrl-C (exit 130)", serve_code == 130, f"exit {serve_code}")
    checks.add("ssl-eval ui stops on Ctrl-C", ui_code is not None, f"exit {ui_code}")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    bad = [row for row in checks.rows if not row[1]]
    print(f"\n{len(checks.rows) - len(bad)} passed, {len(bad)} failed ({time.monotonic() - started:.0f} s); screenshots in {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Serve the monitor deployment on a local interval schedule.

Schedules need a real Prefect server: when PREFECT_API_URL is not set, a server is started
on 127.0.0.1 (PREFECT_HOME inside the work dir) for as long as serving lasts, then stopped.

    ssl-eval serve STORE --interval 300          # the usual way
    python deployments/serve.py STORE 300        # the same, without the CLI
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from deployments.server import local_prefect_server

FLOW_NAME = "monitor"  # flows.monitor.monitor: every entry point runs it
DEPLOYMENT_NAME = "monitor"


def serve_monitor(store: str, *, interval: float, parameters: dict[str, Any]) -> None:
    """Register and serve the monitor deployment (blocks until interrupted).

    ``parameters`` are those of :func:`flows.monitor.monitor` besides ``store`` (``workdir``,
    ``overrides``, ``config_file``, ``dask_address``, ...): never a resolved configuration,
    so each scheduled run reads the store's ``ssl_eval.toml`` afresh.
    """
    from prefect.deployments.runner import EntrypointType

    from flows.monitor import monitor

    with stop_on_ctrl_c():
        monitor.serve(
            name=DEPLOYMENT_NAME,
            interval=interval,
            parameters={"store": store, **parameters},
            description="Evaluate new or changed checkpoints of the store and mirror them to MLflow.",
            entrypoint_type=EntrypointType.MODULE_PATH,
            limit=1,
        )


FORCE_AFTER_SECONDS = 15.0


@contextlib.contextmanager
def stop_on_ctrl_c(force_after: float = FORCE_AFTER_SECONDS) -> Iterator[None]:
    """Stop serving on Ctrl-C: Prefect's graceful path first, then a forced stop.

    Ctrl-C says so at once, then takes Prefect's graceful path (SIGTERM: the runner cancels the
    in-flight flow run, marks it Cancelled and stops polling). A second Ctrl-C, or ``force_after``
    seconds without an exit, kills the flow-run processes and raises KeyboardInterrupt. Only on the
    main thread (signals cannot be set elsewhere).

    Yields:
        Nothing: the block runs with the handler in place.

    Raises:
        KeyboardInterrupt: after the forced stop.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    state = {"asked": 0.0}

    def force() -> None:
        _kill_flow_run_processes()
        print("stopping: the in-flight run did not stop in time; its processes were killed.", flush=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if state["asked"]:
            force()
        state["asked"] = time.monotonic()
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):  # the runner is not running yet
            print("\nstopping...", flush=True)
            raise KeyboardInterrupt
        print("\nstopping: cancelling the in-flight run, if any, and leaving (Ctrl-C again to force)...", flush=True)
        signal.signal(signal.SIGALRM, lambda *_: force())
        signal.setitimer(signal.ITIMER_REAL, force_after)
        os.kill(os.getpid(), signal.SIGTERM)  # the runner's own graceful shutdown

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGINT, previous)
        if state["asked"]:
            print(f"stopping: serving stopped after {time.monotonic() - state['asked']:.1f} s.", flush=True)
            # Prefect's graceful path swallows the interrupt and returns normally: the user
            # stopped the command, so it must still end as interrupted (exit 130).
            raise KeyboardInterrupt


def _kill_flow_run_processes() -> None:
    """SIGKILL every child of this process that runs a flow, and the processes it started.

    Such a child runs ``python -m prefect.engine``, started by the runner in its own session.
    """
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "prefect.engine" in child.cmdline():
                for process in (*child.children(recursive=True), child):
                    with contextlib.suppress(psutil.Error):
                        process.kill()


def serve(store: str, *, interval: float, parameters: dict[str, Any]) -> None:
    """Serve, starting (and stopping) a local Prefect server when none is configured."""
    if os.environ.get("PREFECT_API_URL"):
        serve_monitor(store, interval=interval, parameters=parameters)
        return
    workdir = parameters.get("workdir") or os.environ.get("SSL_EVAL_WORKDIR") or ".ssl_eval"
    with local_prefect_server(Path(workdir) / "prefect") as api_url:
        os.environ["PREFECT_API_URL"] = api_url
        print(f"Prefect server on {api_url.removesuffix('/api')} (stopped when serving stops)", flush=True)
        print("To start a run now from another shell, point prefect at this server first:\n"
              f"  export PREFECT_API_URL={api_url}\n"
              f"  prefect deployment run '{FLOW_NAME}/{DEPLOYMENT_NAME}'", flush=True)
        try:
            serve_monitor(store, interval=interval, parameters=parameters)
        finally:
            print("stopping the local Prefect server...", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python deployments/serve.py STORE [INTERVAL_SECONDS] [WORKDIR]")
    from ssl_eval.results.serve_lock import WorkdirServed, hold_serve_lock
    from ssl_eval.results.workspace import Workspace

    ws = Workspace.at(sys.argv[3] if len(sys.argv) > 3 else None)
    for key, value in ws.runtime_env().items():
        os.environ.setdefault(key, value)
    try:
        with hold_serve_lock(ws.root):  # one serve per work dir, as `ssl-eval serve`
            serve(
                str(Path(sys.argv[1]).resolve()), interval=float(sys.argv[2]) if len(sys.argv) > 2 else 300.0,
                parameters={"workdir": str(ws.root)},
            )
    except WorkdirServed as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)  # as `ssl-eval serve`: refused before anything started

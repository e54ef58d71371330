"""Prefect servers on 127.0.0.1 for one command: the temporary one of ``evaluate``, serve's full one.

- :func:`temporary_api` (``evaluate``): Prefect's temporary server, API only, launched before
  prefect is imported so that it starts while the command imports the flows and scans the
  store; nothing when an API is configured (``PREFECT_API_URL``, a profile, a test harness).
- :func:`local_prefect_server` (``serve``): ``prefect server start``, UI and scheduler.
- Both start a new work dir's database from a migrated template (``deployments.database_template``).

The reaper that ends them should the command be killed is ``deployments.lifetime``.
Processes are found and stopped with psutil; Prefect is configured through its public
settings and ``create_app``'s own arguments.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import psutil

from deployments.database_template import save_template, seed
from deployments.lifetime import end_processes

__all__ = ["free_port", "local_prefect_server", "stop", "temporary_api", "wait_healthy"]

HOST = "127.0.0.1"
PORT_IN_USE = 3  # uvicorn's exit code when its port was taken between choosing and binding


def free_port(host: str = HOST) -> int:
    """A free TCP port on ``host``, chosen by the operating system.

    Args:
        host: the address to bind.

    Returns:
        The port (another process may take it before it is bound).
    """
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_healthy(api_url: str, *, timeout: float = 180.0, process: subprocess.Popen[bytes] | None = None, interval: float = 0.5) -> None:
    """Wait until the Prefect API at ``api_url`` answers its health check.

    Args:
        api_url: the API's URL (``http://host:port/api``).
        timeout: seconds to wait.
        process: the server's process, watched for an early exit.
        interval: seconds between checks.

    Raises:
        RuntimeError: ``process`` exited first.
        TimeoutError: no healthy answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {process.returncode} before it was healthy; see its log.")
        # the Prefect API URL this process started or the operator set, never a store's
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:  # noqa: S310
            if response.status == 200:
                return
        time.sleep(interval)
    raise TimeoutError(f"no healthy Prefect server at {api_url} after {timeout:.0f} s.")


def stop(process: subprocess.Popen[bytes], *, grace: float = 20.0) -> None:
    """Stop ``process`` and every process it started (uvicorn, Prefect's services) together.

    SIGTERM, then SIGKILL after ``grace`` seconds; returns once all of them are gone.

    Args:
        process: the server process.
        grace: seconds between SIGTERM and SIGKILL.
    """
    if process.returncode is None:  # not reaped yet, so its pid is still its own
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(process.pid)
            end_processes([*parent.children(recursive=True), parent], grace)
        process.poll()  # psutil collected its exit status: Popen records it as 0


@contextlib.contextmanager
def local_prefect_server(home: Path, *, host: str = HOST, port: int | None = None) -> Iterator[str]:
    """Run ``prefect server start`` (UI, scheduler) for the block; stop it, and all it started, on exit.

    Args:
        home: its PREFECT_HOME (its database and ``server.log``).
        host: the address it binds.
        port: its port; None: a free one.

    Yields:
        Its API URL, once healthy.
    """
    port = port or free_port(host)
    home.mkdir(parents=True, exist_ok=True)
    seed(home)  # a new work dir's database: start from the migrated template
    api_url = f"http://{host}:{port}/api"
    env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", "PREFECT_UI_API_URL")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # The UI asks /ui-settings where its API is; without these it says port 4200, not this one.
            "PREFECT_SERVER_API_HOST": host, "PREFECT_SERVER_API_PORT": str(port), "PREFECT_SERVER_UI_API_URL": api_url}
    with open(home / "server.log", "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - the prefect script beside our interpreter, a fixed argv
            [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", host, "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        print(f"starting a local Prefect server on {host}:{port} (its log: {home / 'server.log'})...", flush=True)
        try:
            wait_healthy(api_url, process=process)
            yield api_url
        finally:
            stop(process)


def ephemeral_app() -> Any:
    """Build the temporary server's app (a uvicorn factory) as Prefect's own temporary server does.

    Returns:
        Prefect's ``create_app(ephemeral=True, final=True)``: the API, no UI, no background services.
    """
    from prefect.server.api.server import create_app

    return create_app(ephemeral=True, final=True)


def _launch(port: int, log: BinaryIO) -> subprocess.Popen[bytes]:
    """Start the temporary server, :func:`ephemeral_app` under uvicorn, without importing prefect here.

    The server reads the same settings from the inherited environment.

    Returns:
        The server process.
    """
    env = {**os.environ, "PREFECT_SERVER_UI_ENABLED": "false"}
    return subprocess.Popen(  # noqa: S603 - our own interpreter running uvicorn on our factory, a fixed argv
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).resolve().parent.parent),
         "--factory", f"{__name__}:ephemeral_app", "--host", HOST, "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )


def _configured() -> bool:
    """Whether Prefect has an API (or may not start one).

    Returns:
        The answer of Prefect's settings; before prefect is imported, of the environment.
    """
    if "prefect" not in sys.modules:
        return bool(os.environ.get("PREFECT_API_URL"))
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    return bool(settings.api.url) or not settings.server.ephemeral.enabled


def _drain() -> None:
    """Send the queued logs and events before the server stops (else Prefect prints connection errors)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(RuntimeError):  # never started
            worker.drain_all(timeout=10, at_exit=False)


@contextlib.contextmanager
def _api_url(url: str) -> Iterator[None]:
    """Point this process's Prefect settings at ``url`` for the block; restored on exit.

    The environment and the global settings context (read by Prefect's log and event threads)
    change, and this context's settings. Flow-run heartbeats are off for the block: they tell a
    long-lived server which runs crashed, but this server lives and dies with the command, and
    each flow's heartbeat thread, which sleeps in whole seconds, held the end of its run for up
    to a second (two flows per run).

    Yields:
        Nothing: the block runs with the settings in place.
    """
    from prefect.context import refresh_global_settings_context
    from prefect.settings import temporary_settings

    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    refresh_global_settings_context()
    try:
        with temporary_settings(updates={"api.url": url, "flows.heartbeat_frequency": None}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        refresh_global_settings_context()


@contextlib.contextmanager
def temporary_api(log_file: Path, *, timeout: float = 180.0) -> Iterator[Callable[[], None]]:
    """Launch a temporary Prefect server unless an API is configured.

    ``ready`` waits until the server is healthy and points this process's Prefect settings at
    it (call it before the first flow run; a server that exits raises RuntimeError naming its
    log, one silent for ``timeout`` s TimeoutError), or stops it unused when Prefect's settings,
    once imported, name an API. On leaving: queued logs sent, settings restored, server stopped.

    Args:
        log_file: the server's log.
        timeout: seconds ``ready`` waits for a healthy server.

    Yields:
        ``ready``.
    """
    if _configured():
        yield lambda: None  # a configured server (or none allowed): Prefect's own behaviour
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    seed()  # a new work dir's database: start from the migrated template
    with open(log_file, "ab") as log, contextlib.ExitStack() as stack:
        port = free_port(HOST)
        server = [_launch(port, log)]
        stack.callback(lambda: stop(server[0], grace=5.0))

        def ready() -> None:
            nonlocal port
            if _configured():
                stop(server[0], grace=5.0)
                return
            for _ in range(3):
                try:
                    wait_healthy(f"http://{HOST}:{port}/api", timeout=timeout, process=server[0], interval=0.1)
                except RuntimeError:
                    if server[0].returncode != PORT_IN_USE:
                        raise RuntimeError(f"the temporary Prefect server exited with code {server[0].returncode} "
                                           f"before it was healthy; its log is {log_file}.") from None
                    port = free_port(HOST)  # taken between choosing and binding: once more on another
                    server[0] = _launch(port, log)
                    continue
                save_template()  # healthy, and no flow run yet
                stack.enter_context(_api_url(f"http://{HOST}:{port}/api"))
                stack.callback(_drain)  # runs first: before the settings are restored and the server stops
                return
            raise RuntimeError(f"the temporary Prefect server found no free port; its log is {log_file}.")

        yield ready

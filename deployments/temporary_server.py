"""The temporary Prefect server of one ``ssl-eval evaluate``, launched before the work that needs no server so that the two overlap.

Without an API URL, Prefect starts a temporary server (its ``SubprocessASGIServer``) when a
flow first needs the API, and the flow waits for it: about 8 s on two idle cores, most of
it the server importing its stack and migrating a new database, while nothing else runs.
A new work dir's database starts from a migrated template (deployments/prefect_database.py).
:func:`temporary_api` launches the same server (the same uvicorn command and environment,
API only, no UI, no background services) as soon as the command's checks have passed, and
points this process's Prefect settings at it; the command meanwhile imports the flows and
scans the store, then waits for the server's health check before the flow starts. When an
API URL is configured (``PREFECT_API_URL``, a Prefect profile, ``prefect_test_harness``) it
does nothing. The server is this process's child: it stops with the command, and
``deployments.lifetime``'s reaper ends it if the command is killed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from deployments import prefect_database
from deployments.serve import free_port, wait_healthy

HOST = "127.0.0.1"
PORT_IN_USE = 3  # uvicorn's exit code when its port was taken between choosing and binding


def _launch(port: int, log: BinaryIO) -> subprocess.Popen[bytes]:
    """Start Prefect's temporary-server command without importing prefect here.

    The command is ``SubprocessASGIServer``'s (API only, no UI, no background services); it reads
    the same settings from the inherited environment and folder.

    Returns:
        The server process.

    Raises:
        RuntimeError: prefect is not installed.
    """
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise RuntimeError("prefect is not installed; install ssl-eval with its dependencies (pip install ssl-eval).")
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    return subprocess.Popen(  # noqa: S603 - our own interpreter running uvicorn on Prefect's app, a fixed argv
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent),
         "--factory", "prefect.server.api.server:create_app", "--host", HOST, "--port", str(port),
         "--log-level", "error", "--lifespan", "on"],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )


def _configured() -> bool:
    """Whether Prefect already has an API (or may not start one).

    Asked of Prefect's settings once prefect is imported; before that, only the
    environment is read, and :func:`temporary_api` asks again before the flow runs.

    Returns:
        True when Prefect has an API or may not start one.
    """
    if "prefect" not in sys.modules:
        return bool(os.environ.get("PREFECT_API_URL"))
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    return bool(PREFECT_API_URL.value()) or not PREFECT_SERVER_EPHEMERAL_ENABLED.value()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _drain() -> None:
    """Send the logs and events still queued to the server before it stops (else Prefect prints connection errors at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(RuntimeError):  # never started
            worker.drain_all(timeout=10, at_exit=False)


@contextlib.contextmanager
def _api_url(url: str) -> Iterator[None]:
    """Point this process's Prefect settings at ``url``; all restored on exit.

    The environment, the global settings context (read by Prefect's own threads: log and event
    workers), and this context's settings.
    """
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    refresh_global_settings_context()
    try:
        with temporary_settings({PREFECT_API_URL: url}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        refresh_global_settings_context()


@contextlib.contextmanager
def temporary_api(log_file: Path, *, timeout: float = 180.0) -> Iterator[Callable[[], None]]:
    """Launch a temporary Prefect server unless an API URL is configured; yields ``ready``.

    ``ready`` blocks until the server answers its health check and then points this process's
    Prefect settings at it (call it before the first flow run). Called before prefect is imported,
    the server starts while the caller imports it; should Prefect's settings then name an API (a
    profile, prefect.toml), ``ready`` stops the server unused. On leaving the block the queued logs
    are sent, the settings restored and the server stopped.

    Yields:
        ``ready``: call it before the first flow run.

    Raises:
        RuntimeError: the server exited before it was healthy (naming its log).
        TimeoutError: the server was silent for ``timeout`` s.
    """
    if _configured():
        yield lambda: None  # a configured server (or none allowed): Prefect's own behaviour
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    prefect_database.seed()  # a new work dir's database: start from the migrated template
    with open(log_file, "ab") as log, contextlib.ExitStack() as stack:
        port = free_port(HOST)
        server = [_launch(port, log)]
        stack.callback(lambda: _stop(server[0]))

        def ready() -> None:
            nonlocal port
            if _configured():
                _stop(server[0])
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
                prefect_database.save_template()  # healthy, and no flow run yet
                stack.enter_context(_api_url(f"http://{HOST}:{port}/api"))
                stack.callback(_drain)  # runs first: before the settings are restored and the server stops
                return
            raise RuntimeError(f"the temporary Prefect server found no free port; its log is {log_file}.")

        yield ready

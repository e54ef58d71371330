"""Processes and servers the integration tests start (re-exported by tests/helpers/__init__.py).

A free port, waiting for a condition while the process lives, Ctrl-C to a process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, *, proc: subprocess.Popen | None = None,
             log: Path | None = None) -> Any:
    """Poll ``condition`` every second until it returns something true.

    Fails naming ``what`` (and the tail of ``log``) when ``timeout`` seconds pass or ``proc``
    exits first.

    Returns:
        What ``condition`` returned.
    """
    def tail() -> str:
        return log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert proc is None or proc.poll() is None, f"{what}: the process exited; its log:\n{tail()}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s; its log:\n{tail()}"
        time.sleep(1)
    return found


def stop_process_group(proc) -> int:
    """Ctrl-C to ``proc``'s process group, as a terminal sends it (SIGKILL after 60 s); returns its exit code.

    For the integration tests that start ``ssl-eval serve``/``ui``.
    """
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode

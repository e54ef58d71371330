"""Nothing a command starts outlives it: a reaper process ends the command's children when the command dies.

The children are the temporary Prefect server, uvicorn and Dask; the reaper acts even when the
command dies by ``kill -9``, which no handler inside the command can catch.

The reaper is a separate process in its own session (so a signal to the command's process
group does not take it down first). While the command lives, it notes the command's
descendants (pid and start time) every ``interval`` seconds; once the command is gone it
terminates those still running (and still the same processes: the start time guards
against a reused pid), kills what ignores SIGTERM, and exits. It never touches a process
that was not a descendant of the command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil


def start_reaper(*, interval: float = 0.5) -> subprocess.Popen[bytes]:
    """Start the reaper for this process; it ends by itself once this process is gone.

    Args:
        interval: seconds between the reaper's looks at this process's descendants.

    Returns:
        The reaper process (in its own session).
    """
    return subprocess.Popen(  # noqa: S603 - our own interpreter running our own module, a fixed argv
        [sys.executable, "-m", "deployments.lifetime", str(os.getpid()), str(interval)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )


def _descendants(parent: psutil.Process) -> dict[int, float]:
    out = {}
    for child in parent.children(recursive=True):
        try:
            if child.pid != os.getpid():
                out[child.pid] = child.create_time()
        except psutil.Error:
            continue
    return out


def reap(parent_pid: int, *, interval: float = 0.5, grace: float = 5.0) -> list[int]:
    """Watch ``parent_pid``; when it is gone, end the descendants last seen (SIGTERM, then SIGKILL).

    Args:
        parent_pid: the process to watch.
        interval: seconds between looks at its descendants.
        grace: seconds to wait after SIGTERM before SIGKILL, and after SIGKILL.

    Returns:
        The pids it terminated (empty when ``parent_pid`` was already gone).
    """
    try:
        parent = psutil.Process(parent_pid)
    except psutil.NoSuchProcess:
        return []
    known: dict[int, float] = {}
    while True:
        try:
            if not parent.is_running() or parent.status() == psutil.STATUS_ZOMBIE:
                break
            known.update(_descendants(parent))
        except psutil.Error:
            break
        time.sleep(interval)
    alive = []
    for pid, started in known.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == started:  # the same process, not a reused pid
                process.terminate()
                alive.append(process)
        except psutil.Error:
            continue
    _, stubborn = psutil.wait_procs(alive, timeout=grace)
    for process in stubborn:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(stubborn, timeout=grace)  # SIGKILL is sent, not yet done: return once they are gone
    return [p.pid for p in alive]


if __name__ == "__main__":
    reap(int(sys.argv[1]), interval=float(sys.argv[2]) if len(sys.argv) > 2 else 0.5)

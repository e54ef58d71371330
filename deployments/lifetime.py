"""Nothing a command starts outlives it: a reaper process ends the command's children when the command dies.

The children are the temporary Prefect server, uvicorn and Dask; the reaper acts even when the
command dies by ``kill -9``, which no handler inside the command can catch. It is a separate
process in its own session (so a signal to the command's process group does not take it down
first); while the command lives it notes the command's descendants (pid and start time), and
once the command is gone it ends those still running and still the same processes (the start
time guards against a reused pid). It never touches a process that was not a descendant.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time

import psutil

__all__ = ["end_processes", "reap", "start_reaper"]

_reapers: dict[int, subprocess.Popen[bytes]] = {}  # this process's reaper, by pid (a forked child starts its own)
_reapers_lock = threading.Lock()


def end_processes(processes: list[psutil.Process], grace: float) -> None:
    """SIGTERM ``processes``, SIGKILL those alive after ``grace`` seconds, and wait for them.

    Args:
        processes: the processes to end.
        grace: seconds to wait after SIGTERM, and after SIGKILL.
    """
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, stubborn = psutil.wait_procs(processes, timeout=grace)
    for process in stubborn:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(stubborn, timeout=grace)  # SIGKILL is sent, not yet done


def start_reaper(*, interval: float = 0.5) -> subprocess.Popen[bytes]:
    """Start the reaper of this process, once; it ends by itself once this process is gone.

    A later call (a second command run in one process, as the tests do) returns the running one.

    Args:
        interval: seconds between the reaper's looks at this process's descendants.

    Returns:
        The reaper process (in its own session).
    """
    with _reapers_lock:
        running = _reapers.get(os.getpid())
        if running is None or running.poll() is not None:
            _reapers[os.getpid()] = running = subprocess.Popen(  # noqa: S603 - our own interpreter running our own module, a fixed argv
                [sys.executable, "-m", __name__, str(os.getpid()), str(interval)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
            )
        return running


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
    with contextlib.suppress(psutil.Error):
        while parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE:
            for child in parent.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.pid != os.getpid():
                        known[child.pid] = child.create_time()
            time.sleep(interval)
    alive = []
    for pid, started in known.items():
        with contextlib.suppress(psutil.Error):
            if (process := psutil.Process(pid)).create_time() == started:
                alive.append(process)
    end_processes(alive, grace)
    return [process.pid for process in alive]


if __name__ == "__main__":
    reap(int(sys.argv[1]), interval=float(sys.argv[2]) if len(sys.argv) > 2 else 0.5)

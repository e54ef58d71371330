"""One ``ssl-eval serve`` per work dir.

Two serves on one work dir share its Prefect database and its ``monitor/monitor``
deployment: stopping one paused the deployment and deleted every scheduled run while the
other went on polling, starting nothing and saying nothing. So a serve holds the work dir for
as long as it runs: an exclusive lock on ``locks/serve.lock`` (``filelock``: ``flock`` on
Unix, which the kernel releases when the process ends, however it ends), and beside it
``locks/serve.json`` naming the holder (pid, start time, command, since when). A second serve
is refused at once with that name (:class:`WorkdirServed`). A holder file whose process is gone
(a serve killed with ``kill -9``) names nobody: its lock was released with the process, and
the next serve takes the work dir over.

``ssl-eval evaluate`` beside a serve is allowed, and told about it (:func:`serving`): it is an
ad-hoc flow run that never touches the deployment or its schedule, on its own temporary
Prefect server (API only, no scheduler), and two monitor runs at once on one work dir are
safe already (a file lock per unit of work, one MLflow sync at a time per work dir).

The lock is local to one machine, as every work dir lock is (``Workspace.lock``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from ssl_eval.common import strict_json
from ssl_eval.common.safe_text import printable

__all__ = ["Holder", "WorkdirServed", "hold_serve_lock", "serving"]

LOCK_NAME = "serve.lock"
HOLDER_NAME = "serve.json"


@dataclass(frozen=True)
class Holder:
    """The process that serves a work dir."""

    pid: int
    started: float  # the process's start time (psutil), which tells it from a later one with its pid
    command: str  # its command line, credentials redacted, control characters escaped
    since: float  # when it took the work dir (seconds since the epoch)

    def describe(self) -> str:
        """Who holds the work dir, in words.

        Returns:
            ``pid 1234 (ssl-eval serve ./ckpt --interval 300) since 2026-11-28 21:03:04`` (local time).
        """
        return f"pid {self.pid} ({self.command}) since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.since))}"

    def alive(self) -> bool:
        """Whether this process still runs.

        Returns:
            True when a process with this pid runs and started when this one did (not a later one given its pid).
        """
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 1e-3
        except psutil.Error:
            return False


class WorkdirServed(RuntimeError):
    """The work dir is held by another serve (``holder``; None: one that is still starting)."""

    def __init__(self, root: Path, holder: Holder | None) -> None:
        """The refusal's message names ``holder`` and the work dir at ``root``."""
        self.holder = holder
        who = f"another ssl-eval serve, {holder.describe()}," if holder else "another ssl-eval serve (starting)"
        super().__init__(
            f"{who} serves the work dir {root}. Two serves on one work dir share its Prefect deployment, "
            "and stopping one stops the other's schedule. Stop that one first, or pass another --workdir; "
            "`ssl-eval evaluate` may run beside it."
        )


def _me() -> Holder:
    from ssl_eval.common.urls import redact_text

    me = psutil.Process()
    return Holder(pid=me.pid, started=me.create_time(), command=printable(redact_text(shlex.join(me.cmdline()))), since=time.time())


def _read(path: Path) -> Holder | None:
    try:
        return Holder(**strict_json.decode(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def serving(root: Path) -> Holder | None:
    """The serve holding the work dir at ``root``, or None (no holder file, or its process is gone).

    Args:
        root: the work dir.

    Returns:
        The :class:`Holder`, or None.
    """
    holder = _read(Path(root) / "locks" / HOLDER_NAME)
    return holder if holder is not None and holder.alive() else None


@contextlib.contextmanager
def hold_serve_lock(root: Path) -> Iterator[Holder]:
    """Hold the work dir at ``root`` for this process's serve, or raise at once.

    Args:
        root: the work dir.

    Yields:
        This process, as the :class:`Holder` written beside the lock.

    Raises:
        WorkdirServed: another live process holds it.
        OSError: the lock or its holder file cannot be written.
    """
    from filelock import FileLock, Timeout

    folder = Path(root) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise WorkdirServed(Path(root), serving(root)) from None
    holder_file, me = folder / HOLDER_NAME, _me()
    try:
        partial = folder / f"{HOLDER_NAME}.{me.pid}.partial"
        partial.write_text(strict_json.encode(asdict(me)), encoding="utf-8")
        os.replace(partial, holder_file)  # a stale holder's file (a killed serve) is replaced whole
        yield me
    finally:
        if _read(holder_file) == me:
            holder_file.unlink(missing_ok=True)
        lock.release()

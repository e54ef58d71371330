"""Progress of an in-process monitor run, as ``ssl-eval evaluate`` shows it.

The flow reports two things: how much it planned (checkpoints to embed, checkpoints to
measure) and each embedding or measurement that finished. A listener registered with
:func:`listening` receives them; with none (``serve``, work-pool deployments) every call is
a no-op, so the flow behaves the same everywhere. :class:`ProgressDisplay` is the listener
the command line uses: one rich display with counts, elapsed time and an estimate of the
time left.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console


class Listener(Protocol):
    """Who receives a monitor run's progress."""

    def planned(self, *, embed: int, measure: int) -> None:
        """The run planned ``embed`` embeddings and ``measure`` measurements."""

    def finished(self, kind: str) -> None:
        """One embedding or measurement finished (``kind``: "embedded" or "measured")."""


_listener: Listener | None = None
_lock = threading.Lock()


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Send the progress of monitor runs in this process to ``listener`` while inside."""
    global _listener
    with _lock:
        previous, _listener = _listener, listener
    try:
        yield listener
    finally:
        with _lock:
            _listener = previous


def planned(*, embed: int, measure: int) -> None:
    """Tell the listener, if any, how much the run planned."""
    if _listener is not None:
        _listener.planned(embed=embed, measure=measure)


def finished(kind: str) -> None:
    """Tell the listener, if any, that one ``kind`` of work finished."""
    if _listener is not None:
        _listener.finished(kind)


def when_done(future: Any, kind: str) -> None:
    """Report ``kind`` finished when ``future`` (a Prefect future) completes, failed or not."""
    listener = _listener
    if listener is not None:
        future.add_done_callback(lambda _future: listener.finished(kind))


class ProgressDisplay:
    """A rich progress display of a monitor run.

    It shows 'starting' until the plan is known, then checkpoints embedded and measured out of the
    total, elapsed and remaining time.
    """

    def __init__(self, console: Console | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        self.tasks["start"] = self.progress.add_task("starting Prefect and Dask", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def planned(self, *, embed: int, measure: int) -> None:
        """Start the bars: the plan is known."""
        self.progress.remove_task(self.tasks.pop("start"))
        self.tasks["embedded"] = self.progress.add_task("checkpoints embedded", total=embed)
        self.tasks["measured"] = self.progress.add_task("checkpoints measured", total=measure)

    def finished(self, kind: str) -> None:
        """Advance the bar of ``kind``."""
        if kind in self.tasks:
            self.progress.advance(self.tasks[kind])

"""Process-wide state that tasks running on threads of one process must share safely.

- :func:`one_thread_per_task`: one BLAS / OpenMP / torch thread per task where tasks
  already run in parallel threads, set once around a whole threaded run.
- :func:`ignoring_warnings`: a warnings filter that threads can enter and leave in any
  order (``warnings.catch_warnings`` saves and restores the one process-wide filter list,
  so overlapping blocks on two threads lose or leak each other's filters).

docs/reliability.md ("Tasks on threads") lists every process-wide state the tasks touch.

A threaded Dask cluster runs as many tasks at once as it has threads (one per core here);
each task's numpy BLAS, OpenMP and torch calls would otherwise start as many threads again,
so two cores ran four busy threads that spin while waiting for each other (measured on a
2-core machine: BLAS-heavy calls 5 to 15x slower, docs/benchmarks.md). Dask's own worker
processes get the same rule from their nanny (OMP_NUM_THREADS=1 and the like).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import Counter
from typing import Iterator

__all__ = ["ignoring_warnings", "one_thread_per_task"]

_warnings_lock = threading.Lock()
_ignoring: Counter[type[Warning]] = Counter()
_added: set[type[Warning]] = set()  # categories whose filter this module added (not one that was there)


@contextlib.contextmanager
def one_thread_per_task(active: bool = True) -> Iterator[None]:
    """Limit this process's BLAS and OpenMP pools and torch's intra-op threads to one
    while inside; restore them on leaving. The limits are process-wide: enter it around a
    whole threaded run, not inside one of its tasks.

    Args:
        active: False makes it a no-op (a cluster of worker processes, whose nannies set
            their own limits, or a run on a remote cluster).

    Yields:
        Nothing; the limits hold until the block ends.
    """
    if not active:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def ignoring_warnings(*categories: type[Warning]) -> Iterator[None]:
    """Ignore warnings of ``categories`` while inside, safely on any number of threads.

    The filter list is process-wide: the first thread to enter adds one ``ignore`` filter
    per category and the last one to leave removes exactly that filter, whatever else was
    added or removed meanwhile (``warnings.catch_warnings`` restores a snapshot instead,
    which on overlapping threads removes another block's filter or leaks its own for good).
    While any thread is inside, other threads ignore those categories too: use it for the
    narrow categories a library call is known to raise (``ConvergenceWarning``).

    Args:
        categories: the warning classes to ignore.

    Yields:
        Nothing; the filters hold until the last overlapping block ends.
    """
    with _warnings_lock:
        for category in categories:
            if _ignoring[category] == 0 and _entry(category) not in warnings.filters:
                warnings.filterwarnings("ignore", category=category)
                _added.add(category)
            _ignoring[category] += 1
    try:
        yield
    finally:
        with _warnings_lock:
            for category in categories:
                _ignoring[category] -= 1
                if _ignoring[category] == 0:
                    del _ignoring[category]
                    if category in _added:
                        _added.discard(category)
                        _remove_filter(_entry(category))


def _entry(category: type[Warning]) -> tuple:
    """The filter ``warnings.filterwarnings("ignore", category=category)`` adds."""
    return ("ignore", None, category, None, 0)


def _remove_filter(entry: tuple) -> None:
    """Remove one filter from the process-wide list, as ``catch_warnings`` does on leaving:
    the registries of locations already warned are invalidated too."""
    with contextlib.suppress(ValueError):  # someone called warnings.resetwarnings() meanwhile
        warnings.filters.remove(entry)  # type: ignore[arg-type]
    mutated = getattr(warnings, "_filters_mutated", None) or getattr(warnings, "_filters_mutated_lock_held", None)
    if mutated is not None:
        mutated()

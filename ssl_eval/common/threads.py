"""Process-wide state that tasks running on threads of one process must share safely.

- :func:`one_thread_per_task`: one BLAS / OpenMP / torch thread per task where tasks
  already run in parallel threads, set once around a whole threaded run.
- :func:`quiet_known_warnings`: the library warnings the metrics handle themselves,
  ignored by filters set once (``warnings.catch_warnings`` saves and restores the one
  process-wide filter list, so overlapping blocks on two threads lose or leak each
  other's filters).

docs/reliability.md ("Tasks on threads") lists every process-wide state the tasks touch.

A threaded Dask cluster runs as many tasks at once as it has threads (one per core here);
each task's numpy BLAS, OpenMP and torch calls would otherwise start as many threads again,
so two cores ran four busy threads that spin while waiting for each other (measured on a
2-core machine: BLAS-heavy calls 5 to 15x slower, docs/benchmarks.md). Dask's own worker
processes get the same rule from their nanny (OMP_NUM_THREADS=1 and the like).
"""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from collections.abc import Iterator

__all__ = ["KNOWN_WARNINGS", "one_openmp_thread_in_task", "one_thread_per_task", "quiet_known_warnings"]

_warnings_lock = threading.Lock()
_open_blocks = 0  # one_thread_per_task blocks open in this process (the flow's, around a threaded run)
_blocks_lock = threading.Lock()


@contextlib.contextmanager
def one_thread_per_task(active: bool = True) -> Iterator[None]:
    """Limit this process's BLAS and OpenMP pools and torch's intra-op threads to one while inside; restore them on leaving.

    The limits are process-wide: enter it around a whole threaded run, not inside one of
    its tasks.

    Args:
        active: False makes it a no-op (a cluster of worker processes, whose nannies set
            their own limits, or a run on a remote cluster).

    Yields:
        Nothing; the limits hold until the block ends.
    """
    if not active:
        yield
        return
    # threadpoolctl limits the pools loaded when the block starts; scikit-learn's own OpenMP
    # runtime loads with it, which the metric tasks import only later: two OpenMP threads per
    # task on top of the Dask threads (measured: 1.5 to 3 s of an extra thread's CPU a run)
    import sklearn  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    global _open_blocks
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with _blocks_lock:
        _open_blocks += 1
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        with _blocks_lock:
            _open_blocks -= 1
        torch.set_num_threads(previous)


@contextlib.contextmanager
def one_openmp_thread_in_task() -> Iterator[None]:
    """Inside a task: one OpenMP thread for the calling thread while a :func:`one_thread_per_task` block is open.

    OpenMP's thread count is a setting of each calling thread (``omp_set_num_threads``), so the
    block's limit, set on the flow's thread, never reached the Dask worker threads: there
    scikit-learn's k-means and neighbour searches ran two OpenMP threads per task on two cores
    (an extra busy thread with 3 to 3.5 s of CPU per 18-checkpoint run). This sets and restores
    the calling thread's count only: no other thread sees it. Outside such a block (worker
    processes, whose nannies set their own limits; direct calls) it does nothing.

    Yields:
        Nothing; the limit holds for this thread until the block ends.
    """
    if not _open_blocks:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


#: Warnings that libraries raise where the metrics already handle the case (a flag, NaN, a
#: stated fallback), by the start of their message. Ignored process-wide, installed once.
KNOWN_WARNINGS = (
    "Number of distinct clusters",  # k-means on duplicate points (a collapsed encoder: flagged)
    "lbfgs failed to converge",  # the scikit-learn reference probe at max_iter (as configured)
    "An input array is constant", "An input array is nearly constant", "Each of the input arrays is constant",  # scipy.stats
    "n_jobs value", "Graph is not fully connected", "Spectral initialisation failed",  # UMAP on small N
)


def quiet_known_warnings() -> None:
    """Ignore :data:`KNOWN_WARNINGS` in this process: filters appended once (the user's own filters still win) and never removed.

    Idempotent and cheap: the code that can raise one calls it first.

    Not ``warnings.catch_warnings``: that saves the one process-wide filter list on entry and
    restores it on exit, so blocks that overlap on two threads lose or leak each other's
    filters (scikit-learn enters one in every ``check_array``, on every thread). Filters that
    never change are the same in every snapshot.
    """
    if all(_present(message) for message in KNOWN_WARNINGS):
        return
    with _warnings_lock:
        for message in KNOWN_WARNINGS:
            if not _present(message):
                warnings.filterwarnings("ignore", message=re.escape(message), append=True)


def _present(message: str) -> bool:
    pattern = re.escape(message)
    return any(f[0] == "ignore" and f[1] is not None and f[1].pattern == pattern and f[2] is Warning and f[3] is None
               for f in warnings.filters)


quiet_known_warnings()

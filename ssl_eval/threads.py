"""One BLAS / OpenMP / torch thread per task where tasks already run in parallel threads.

A threaded Dask cluster runs as many tasks at once as it has threads (one per core here);
each task's numpy BLAS, OpenMP and torch calls would otherwise start as many threads again,
so two cores ran four busy threads that spin while waiting for each other (measured on a
2-core machine: BLAS-heavy calls 5 to 15x slower, docs/benchmarks.md). Dask's own worker
processes get the same rule from their nanny (OMP_NUM_THREADS=1 and the like).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["one_thread_per_task"]


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

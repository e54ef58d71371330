"""one_thread_per_task: one BLAS/OpenMP/torch thread inside, the previous counts after."""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_info

from ssl_eval.common.threads import one_thread_per_task


def _pool_sizes() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info()]


def test_limits_every_pool_to_one_thread_and_restores_them():
    import numpy as np

    np.ones((2, 2)) @ np.ones((2, 2))  # numpy's BLAS is loaded
    before_torch, before_pools = torch.get_num_threads(), _pool_sizes()
    torch.set_num_threads(2)
    try:
        with one_thread_per_task():
            assert torch.get_num_threads() == 1
            assert _pool_sizes() and all(n == 1 for n in _pool_sizes())
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before_torch)
    assert _pool_sizes() == before_pools


def test_inactive_changes_nothing():
    before = torch.get_num_threads(), _pool_sizes()
    with one_thread_per_task(active=False):
        assert (torch.get_num_threads(), _pool_sizes()) == before


def test_a_task_thread_runs_one_thread_of_every_pool_the_metrics_load():
    """In a fresh process, on a thread as Dask runs a task: BLAS pools loaded later, and OpenMP (a per-thread count)."""
    import subprocess
    import sys

    code = (
        "import threading\n"
        "from threadpoolctl import threadpool_info\n"
        "from ssl_eval.common.threads import one_openmp_thread_in_task, one_thread_per_task\n"
        "def task():\n"
        "    import ssl_eval.metrics.clustering, ssl_eval.probe\n"
        "    with one_openmp_thread_in_task():\n"
        "        print(sorted({(p['internal_api'], p['num_threads']) for p in threadpool_info()}))\n"
        "with one_thread_per_task():\n"
        "    worker = threading.Thread(target=task)\n"
        "    worker.start()\n"
        "    worker.join()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "('openmp', 1)" in out and "('openblas', 1)" in out and "2)" not in out, out

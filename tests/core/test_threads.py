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

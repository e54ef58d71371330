"""The default Dask cluster of the monitor flow listens on the loopback interface only."""

from __future__ import annotations

import psutil
from distributed import LocalCluster

from flows.monitor import dask_runner


def test_local_cluster_binds_to_loopback_only():
    runner = dask_runner()
    with LocalCluster(**runner.cluster_kwargs) as cluster:
        listening = [
            c.laddr for c in psutil.Process().net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
        ]
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening


def test_existing_cluster_address_is_used_as_given():
    runner = dask_runner("tcp://127.0.0.1:8786")
    assert runner.address == "tcp://127.0.0.1:8786" and not runner.cluster_kwargs

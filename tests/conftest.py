"""Shared fixtures: a tiny checkpoint store on digits, and a per-test work dir."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from ssl_eval.demo.stores import make_store, write_checkpoint  # noqa: F401  (tests import them from here)

# Prefect reads its settings at import: keep its home, and Dask's scratch, out of the
# user's folders for the whole test session.
_TEST_HOME = Path(tempfile.mkdtemp(prefix="ssl-eval-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_TEST_HOME / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("DASK_TEMPORARY_DIRECTORY", str(_TEST_HOME / "dask"))
os.environ.setdefault("MPLCONFIGDIR", str(_TEST_HOME / "matplotlib"))
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


@pytest.fixture
def tiny_store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store", {"simclr": 3, "simsiam": 3})


@pytest.fixture
def tiny_config():
    from ssl_eval.config import Config, DataConfig

    return Config(data=DataConfig(name="digits", n_eval=200, n_probe_train=300, n_probe_test=200))


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield

"""Shared fixtures: a tiny checkpoint store on digits and its configuration (helpers that
tests import live in tests/helpers.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.helpers import TINY_OVERRIDES, make_store

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
def tiny_overrides() -> dict:
    """The monitor flow's ``overrides`` for the tiny store: digits at small sizes."""
    return dict(TINY_OVERRIDES)


@pytest.fixture
def tiny_config():
    """The configuration the monitor flow resolves from :data:`TINY_OVERRIDES`."""
    from ssl_eval.config import load_config

    return load_config(**TINY_OVERRIDES)


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    # a busy 2-core machine can take minutes to start the temporary server
    with prefect_test_harness(server_startup_timeout=300):
        yield

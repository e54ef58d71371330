"""Shared fixtures: a tiny checkpoint store on digits and its configuration (helpers that tests import live in tests/helpers.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
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
# the migrated Prefect database template (deployments/database_template.py): made by the
# session's first temporary server, used by the later ones, never the user's cache
os.environ.setdefault("SSL_EVAL_CACHE_DIR", str(_TEST_HOME / "cache"))
# LLVM optimisation level 0 for numba: on a fresh install the UMAP test compiles umap-learn's
# and pynndescent's kernels cold (about a minute on 2 cores, 25 % less at level 0); the
# kernels then run on 90 points, where optimised code saves nothing. Read when numba is imported.
# Their cache goes to the tests' own folder: numba's cache key ignores the optimisation level,
# so level-0 kernels cached beside umap-learn would be what the product then runs.
os.environ.setdefault("NUMBA_OPT", "0")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "numba"))


_INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration/ ``integration``: each starts real servers.

    ``make test-fast`` leaves them out, whether or not the module says so. The integration
    modules then run first, and the modules with a ``slow`` test next (each module's tests in
    their order): ``make test`` hands whole modules to its two pytest-xdist workers in this
    order, and the long ones (the distributed run alone takes a minute and a half) started last
    would leave one worker idle at the end while the other finishes them.
    """
    for item in items:
        if _INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)
    slow_modules = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: 0 if item.get_closest_marker("integration") else 1 if item.path in slow_modules else 2)


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
        _save_prefect_template()
        yield


def _save_prefect_template() -> None:
    """Keep the harness's freshly migrated database as the session's Prefect database template.

    The database holds no flow run yet; the template is deployments/database_template.py's, in
    SSL_EVAL_CACHE_DIR, as the product's first temporary server keeps its own: every later server a
    test starts on a new work dir then skips creating and migrating one (about 20 s each on 2
    cores).
    """
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    from deployments import database_template

    database_template.save_template(Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().removeprefix("sqlite+aiosqlite:///")))


@pytest.fixture(scope="session")
def prefect_template(prefect_harness) -> Path:
    """The session's migrated Prefect database template (see :func:`_save_prefect_template`): for the tests whose servers start on a new database."""
    from deployments import database_template

    return database_template.template_path()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (tests/browser.py) for every UI check of the session: a start costs seconds.

    Tests that use it skip where Chromium is missing.
    """
    from tests.browser import Chromium

    with Chromium() as started:
        yield started


@pytest.fixture(scope="session")
def _empty_mlflow_db(tmp_path_factory) -> Path:
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # creates the tables and runs MLflow's migrations
    return db


@pytest.fixture
def mlflow_store(_empty_mlflow_db) -> Callable[[Path], str]:
    """``mlflow_store(path)`` puts an empty MLflow sqlite store at ``path`` and returns its URI.

    MLflow takes seconds to create and migrate a new store; the tests that read what was
    logged into one start from a copy of a store made once per session (the tests of a
    fresh work dir, `ssl-eval evaluate` and `serve`, still have MLflow create its own).
    """

    def at(path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_empty_mlflow_db, path)
        return f"sqlite:///{path}"

    return at


@pytest.fixture
def no_mlflow_figures(monkeypatch):
    """The MLflow mirror skips its figures, for tests that read none of them.

    The figures are three PNGs of every metric, seconds to draw: tests/tasks/test_mlflow_mirror.py
    checks them, and the served flows of tests/integration draw them.
    """
    import ssl_eval.integrations.mlflow_figures

    monkeypatch.setattr(ssl_eval.integrations.mlflow_figures, "log_figures", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def _cpu_by_default(request, monkeypatch):
    """Tests run on the CPU: the suite's references are CPU results (scikit-learn, the bare model in fp32).

    On a machine with a GPU the default device would embed in bf16 and miss them in the third digit.
    Tests marked ``cuda`` (tests/core/test_cuda.py) see the real default and compare the GPU path
    with the CPU at bf16 tolerances. Subprocesses (the CLI, Prefect and Dask workers) are not
    pinned: they compare with a stated tolerance.
    """
    if request.node.get_closest_marker("cuda") is not None:
        return
    import torch

    from ssl_eval.pipeline import inference
    from ssl_eval.probe import logistic

    cpu = torch.device("cpu")
    monkeypatch.setattr(inference, "default_device", lambda: cpu)
    monkeypatch.setattr(logistic, "default_device", lambda: cpu)

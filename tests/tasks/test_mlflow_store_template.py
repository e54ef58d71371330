"""A new work dir's MLflow store starts from the cached, migrated template (ssl_eval.common.sqlite_templates).

Real MLflow on sqlite files in tmp_path: the first new store is MLflow's own and becomes the
template; a later one is a copy whose default experiment points into its own work dir, and a
full mirror sync works on it; a store holding the user's runs, another tracking URI and a
damaged cache file never make or use a template.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ssl_eval.analysis import store_family_analysis
from ssl_eval.common import sqlite_templates
from ssl_eval.config import Config
from ssl_eval.integrations.mlflow_mirror import prepare_store, sync_family
from ssl_eval.results.workspace import Workspace
from ssl_eval.verdict.records import store_verdict
from tests.helpers import synthetic_workspace

pytestmark = pytest.mark.slow  # MLflow creates and migrates one store: seconds


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SSL_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _templates(cache: Path) -> list[Path]:
    return sorted(cache.glob("mlflow-*.db")) if cache.is_dir() else []


def _default_location(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT artifact_location FROM experiments WHERE experiment_id = 0").fetchone()[0]


def test_the_first_new_store_becomes_the_template_and_the_next_starts_from_a_copy(tmp_path, cache):
    first = Workspace.at(tmp_path / "first")
    prepare_store(first, first.mlflow_uri)
    (template,) = _templates(cache)
    assert list(cache.iterdir()) == [template]  # no partial file left behind
    assert MlflowClient(f"sqlite:///{template}").search_experiments()[0].name == "Default"

    ws = synthetic_workspace(tmp_path / "second", epochs=3, runs=2)
    assert not (ws.root / "mlflow.db").exists()
    analysis = store_family_analysis(ws, "simclr")
    store_verdict(ws, "simclr", analysis, Config())
    outcome = sync_family(ws, "simclr", tracking_uri=ws.mlflow_uri, figures=False)
    # a copy: MLflow would have put the default experiment under the current folder's mlruns
    assert _default_location(ws.root / "mlflow.db") == (ws.mlflow_artifacts / "0").as_uri()
    client = MlflowClient(ws.mlflow_uri)
    exp = client.get_experiment_by_name("ssl-eval/simclr")
    assert exp is not None and outcome.runs == 2 and outcome.experiment_id == exp.experiment_id
    runs = client.search_runs([exp.experiment_id])
    assert {r.info.run_name for r in runs} >= {"simclr/run-0", "simclr/run-1", "simclr/correlations"}
    assert _templates(cache) == [template]


def test_a_store_with_runs_another_uri_and_a_damaged_template_make_or_use_no_template(tmp_path, cache):
    # the user's store already holds an experiment: it is opened as it is, never saved
    ws = Workspace.at(tmp_path / "held")
    MlflowClient(ws.mlflow_uri).create_experiment("mine")
    prepare_store(ws, ws.mlflow_uri)
    assert _templates(cache) == []
    # a tracking URI other than the work dir's own store: MLflow's as usual, nothing cached
    other = Workspace.at(tmp_path / "other")
    prepare_store(other, f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert _templates(cache) == [] and not (other.root / "mlflow.db").exists()
    # a damaged template is deleted, the new store is MLflow's own, and it becomes the template
    cache.mkdir()
    damaged = sqlite_templates.template_path("mlflow")
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    fresh = Workspace.at(tmp_path / "fresh")
    prepare_store(fresh, fresh.mlflow_uri)
    assert MlflowClient(fresh.mlflow_uri).get_experiment("0").name == "Default"
    assert damaged.is_file() and MlflowClient(f"sqlite:///{damaged}").search_experiments()[0].name == "Default"

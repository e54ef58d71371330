"""Fault injection: the process is SIGKILLed while writing embeddings, while writing a metric record and while logging to MLflow.

The next run trusts nothing half-written, recomputes nothing that was finished, and
duplicates no MLflow point.

Each fault runs in a child process that patches one library call to kill itself midway:
production code has no fault hooks.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from ssl_eval.analysis import store_family_analysis
from ssl_eval.integrations.mlflow_mirror import sync_family
from ssl_eval.pipeline.embedding import embed_or_record_failure
from ssl_eval.pipeline.evaluation import compute_part
from ssl_eval.pipeline.outcomes import Status
from ssl_eval.pipeline.planning import plan
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from tests.memory_cap import run_capped

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """
import os, signal, sys
sys.path.insert(0, {root!r})
from ssl_eval.config import Config
from ssl_eval.sources.checkpoints import discover
from ssl_eval.results.workspace import Workspace
config = Config.model_validate_json({config!r})
ws = Workspace.at({work!r})
refs = discover({store!r})
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_child(body: str, *, store: Path, work: Path, config) -> int:
    """Run ``body`` after PRELUDE in a child process; its exit code (-9: it killed itself).

    The child is forked from a process that imported this module (tests/memory_cap.py): a fresh
    interpreter spent seconds of CPU importing what this module imports.
    """
    code = PRELUDE.format(root=str(ROOT), config=config.model_dump_json(), work=str(work), store=str(store)) + textwrap.dedent(body)
    return run_capped(f"{__name__}:_exec", code, cap_gb=4.0, cpu_seconds=120.0)[0].returncode


def _exec(code: str) -> str:
    exec(compile(code, "<fault>", "exec"), {})  # noqa: S102 - the test's own code
    return "finished"


def _evaluate(ws: Workspace, store: Path, config) -> dict:
    """What a monitor run does, without Prefect: returns what was computed."""
    work = plan(discover(store), config, ws, tracking_uri=None)
    done: dict[str, list[Any]] = {"embedded": [], "computed": []}
    for item in work.items:
        if embed_or_record_failure(item.ref, config, ws).status is Status.EMBEDDED:
            done["embedded"].append(item.ref.id)
        for part in item.parts:
            if compute_part(ws, item.ref.id, part, config).status is Status.COMPUTED:
                done["computed"].append((item.ref.id, part))
    return done


@pytest.mark.slow
def test_killed_while_writing_embeddings(tiny_store, tiny_config, tmp_path):
    work = tmp_path / "w"
    body = """
    import zarr
    from ssl_eval.pipeline.embedding import embed_or_record_failure
    original, calls = zarr.Group.create_array, []
    def create_array(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:   # some arrays of the group are on disk, not all
            die()
        return original(self, *args, **kwargs)
    zarr.Group.create_array = create_array
    embed_or_record_failure(refs[0], config, ws)
    """
    assert _run_child(body, store=tiny_store, work=work, config=tiny_config) == -9
    ws = Workspace.at(work)
    first = discover(tiny_store)[0]
    assert ws.embeddings.provenance(first.id) is None  # the half-written group is not visible
    assert any((Path(ws.embeddings.root) / ".staging").iterdir())  # only debris, in staging
    done = _evaluate(ws, tiny_store, tiny_config)
    assert first.id in done["embedded"] and len(done["embedded"]) == 6
    staging = Path(ws.embeddings.root) / ".staging"
    assert not staging.exists() or not any(staging.iterdir())
    assert ws.embeddings.read(first.id, "eval").shape == (200, 128)


@pytest.mark.slow
def test_killed_while_writing_a_metric_record(tiny_store, tiny_config, tmp_path):
    work = tmp_path / "w"
    ws = Workspace.at(work)
    ref = discover(tiny_store)[0]
    embed_or_record_failure(ref, tiny_config, ws)
    compute_part(ws, ref.id, "metrics-spectral", tiny_config)
    body = """
    import os
    from ssl_eval.pipeline.evaluation import compute_part
    original = os.replace
    def replace(src, dst, *a, **k):
        if str(dst).endswith("metrics-clustering.json"):
            die()   # the record's temporary file is written, the rename never happens
        return original(src, dst, *a, **k)
    os.replace = replace
    compute_part(ws, refs[0].id, "metrics-clustering", config)
    """
    assert _run_child(body, store=tiny_store, work=work, config=tiny_config) == -9
    assert ws.records.get(ref.id, "metrics-clustering") is None
    done = _evaluate(ws, tiny_store, tiny_config)
    assert (ref.id, "metrics-clustering") in done["computed"]
    assert (ref.id, "metrics-spectral") not in done["computed"]  # finished work is not redone
    assert ref.id not in done["embedded"]
    assert _evaluate(ws, tiny_store, tiny_config) == {"embedded": [], "computed": []}


@pytest.mark.slow
def test_killed_while_logging_to_mlflow(tiny_store, tiny_config, tmp_path, mlflow_store, no_mlflow_figures):
    # the figures are not what a kill mid-log can break
    work = tmp_path / "w"
    ws = Workspace.at(work)
    _evaluate(ws, tiny_store, tiny_config)
    store_family_analysis(ws, "simclr")
    mlflow_store(ws.root / "mlflow.db")
    body = """
    from mlflow.tracking import MlflowClient
    from ssl_eval.integrations.mlflow_mirror import sync_family
    original, calls = MlflowClient.log_batch, []
    def log_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:   # the first run's points are logged, the rest are not
            die()
        return original(self, *args, **kwargs)
    MlflowClient.log_batch = log_batch
    sync_family(ws, "simclr", tracking_uri=ws.mlflow_uri)
    """
    assert _run_child(body, store=tiny_store, work=work, config=tiny_config) == -9
    assert ws.records.get("simclr", "mlflow") is None  # the mirror is not marked as synced
    assert plan(discover(tiny_store), tiny_config, ws, tracking_uri=ws.mlflow_uri).families == ("simclr", "simsiam")
    sync_family(ws, "simclr", tracking_uri=ws.mlflow_uri)
    sync_family(ws, "simclr", tracking_uri=ws.mlflow_uri)
    client = MlflowClient(ws.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("ssl-eval/simclr").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["simclr/correlations", "simclr/run-0"]  # no duplicate run
    run = next(r for r in runs if r.info.run_name == "simclr/run-0")
    for key in run.data.metrics:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert sorted(steps) == [0, 1, 2], key

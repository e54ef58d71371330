"""Every entry point runs the `monitor` flow, which reads the store's ssl_eval.toml at each run.

Called with only `store` and `workdir` it uses the store's file, explicit overrides win, and an edit
is applied by the next run. The prefix recovery path works end to end.
"""

from __future__ import annotations

import pytest

import flows.monitor as monitor
from deployments.entrypoints import monitor as entrypoint  # prefect.yaml's monitor deployment
from flows.monitor import run_monitor
from ssl_eval.results.workspace import Workspace
from tests.helpers import write_checkpoint

TINY_DATA = '[data]\nname = "digits"\nn_eval = 200\nn_probe_train = 300\nn_probe_test = 200\n'


def _capture(monkeypatch) -> list[dict]:
    """Replace the evaluation pass by a stub that records what the entrypoint gave it."""
    seen: list[dict] = []

    class Flow:
        def with_options(self, task_runner):
            def run(**kwargs):
                seen.append({**kwargs, "dask_address": task_runner.address})
                return {}

            return run

    monkeypatch.setattr(monitor, "monitor_store", Flow())
    return seen


@pytest.mark.slow
def test_entrypoint_with_only_store_and_workdir_reads_the_store_file_every_run(prefect_harness, tmp_path, monkeypatch):
    seen = _capture(monkeypatch)
    store = tmp_path / "store"
    store.mkdir()
    (store / "ssl_eval.toml").write_text(TINY_DATA + '[families.mocov2]\nprefix = "module.encoder_q."\n')
    entrypoint(store=str(store), workdir=str(tmp_path / "work"))
    config = seen[-1]["config"]
    assert (config.data.name, config.data.n_eval, config.family("mocov2").prefix) == ("digits", 200, "module.encoder_q.")
    assert seen[-1]["dask_address"] is None  # a local cluster: where work runs is never the store file's to say
    assert seen[-1]["workspace"] == Workspace.at(tmp_path / "work")

    # an edit is applied by the next run; explicit parameters win over the file
    (store / "ssl_eval.toml").write_text(TINY_DATA.replace("n_eval = 200", "n_eval = 150"))
    entrypoint(store=str(store), workdir=str(tmp_path / "work"), overrides={"data.n_probe_test": 100}, dask_address="tcp://10.0.0.1:8786")
    config = seen[-1]["config"]
    assert (config.data.n_eval, config.data.n_probe_test, config.family("mocov2").prefix) == (150, 100, None)
    assert seen[-1]["dask_address"] == "tcp://10.0.0.1:8786"
    entrypoint(store=str(store), workdir=str(tmp_path / "work"))
    assert seen[-1]["dask_address"] is None  # the parameter was for that run only


@pytest.mark.slow
def test_removing_a_wrong_prefix_retries_the_known_failure(prefect_harness, tmp_path):
    store, work = tmp_path / "store", str(tmp_path / "work")
    write_checkpoint(store / "mocov2" / "run-0" / "epoch=00.ckpt", epoch=0, seed=0, prefix="module.encoder_q.")
    (store / "ssl_eval.toml").write_text(TINY_DATA + '[families.mocov2]\nprefix = "backbone."\n')
    first = run_monitor(str(store), work, track_mlflow=False, settle_seconds=0)
    assert list(first.failed) == ["mocov2/run-0/epoch=00"]
    assert "remove it to let ssl-eval find the backbone keys" in first.failed["mocov2/run-0/epoch=00"]
    again = run_monitor(str(store), work, track_mlflow=False, settle_seconds=0)
    assert again.known_failed == ("mocov2/run-0/epoch=00",) and again.failed == {}  # unchanged: skipped

    # the error's own advice: remove the prefix; the next run detects it and embeds
    (store / "ssl_eval.toml").write_text(TINY_DATA)
    fixed = run_monitor(str(store), work, track_mlflow=False, settle_seconds=0)
    assert fixed.embedded == ("mocov2/run-0/epoch=00",) and fixed.failed == {} and fixed.known_failed == ()
    provenance = Workspace.at(work).embeddings.provenance("mocov2/run-0/epoch=00")
    assert (provenance["prefix"], provenance["prefix_source"]) == ("module.encoder_q.", "detected")

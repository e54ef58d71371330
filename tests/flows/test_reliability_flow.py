"""Reliability of a whole monitor run (under prefect_test_harness, threaded Dask).

One checkpoint's exception of any type never stops the run or the other checkpoints.
"""

from __future__ import annotations

import pytest

import ssl_eval.pipeline.embedding as embed_module
import ssl_eval.pipeline.evaluation as evaluation_module
from flows.monitor import run_monitor
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources import model_building


@pytest.mark.slow
def test_odd_exceptions_of_single_checkpoints_never_stop_the_run(prefect_harness, tiny_store, tiny_overrides, tmp_path, monkeypatch):
    real_build, real_probes = model_building.build_model, evaluation_module._probes

    def build(loaded, family, *, path, **kwargs):
        if path.endswith("simclr/run-0/epoch=01.ckpt"):
            raise AttributeError("'NoneType' object has no attribute 'fc'")
        return real_build(loaded, family, path=path, **kwargs)

    def probes(ckpt, config):
        if ckpt.id == "simsiam/run-0/epoch=02":
            raise ZeroDivisionError("float division by zero")
        return real_probes(ckpt, config)

    monkeypatch.setattr(embed_module, "build_model", build)
    monkeypatch.setattr(evaluation_module, "_probes", probes)
    ws = Workspace.at(tmp_path / "work")
    summary = run_monitor(str(tiny_store), str(ws.root), overrides=tiny_overrides, track_mlflow=False)
    assert set(summary.failed) == {"simclr/run-0/epoch=01", "simsiam/run-0/epoch=02"}
    assert "AttributeError: 'NoneType' object has no attribute 'fc'" in summary.failed["simclr/run-0/epoch=01"]
    assert "ZeroDivisionError: float division by zero" in summary.failed["simsiam/run-0/epoch=02"]
    assert len(summary.embedded) == 5
    # both families analysed over their good checkpoints
    assert {f: a.n_checkpoints for f, a in summary.analyses.items()} == {"simclr": 2, "simsiam": 2}


@pytest.mark.slow
def test_a_store_of_12_dino_checkpoints_is_evaluated_whole_on_the_threaded_cluster(prefect_harness, tiny_overrides, tmp_path):
    """A store of 12 DINO checkpoints is evaluated whole on the threaded cluster.

    DINO files pickle an argparse.Namespace: loads overlapping on the cluster's threads once refused
    some of them at random (torch's safe globals are one process-wide set).
    """
    from tests.helpers import write_dino_checkpoint

    for epoch in range(12):
        write_dino_checkpoint(tmp_path / "store" / "dino" / "run-0" / f"checkpoint{epoch:04d}.pth", epoch=epoch, seed=epoch)
    summary = run_monitor(str(tmp_path / "store"), str(tmp_path / "work"), overrides={**tiny_overrides, "families.dino.arch": "democnn"},
                          track_mlflow=False)
    assert summary.failed == {} and len(summary.embedded) == 12
    assert summary.analyses["dino"].n_checkpoints == 12

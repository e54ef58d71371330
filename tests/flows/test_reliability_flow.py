"""Reliability of a whole monitor run (under prefect_test_harness, threaded Dask): one
checkpoint's exception of any type never stops the run or the other checkpoints."""

from __future__ import annotations

import ssl_eval.embedding as embed_module
import ssl_eval.evaluation as evaluation_module
from flows.monitor import run_monitor
from ssl_eval.workspace import Workspace


def test_odd_exceptions_of_single_checkpoints_never_stop_the_run(prefect_harness, tiny_store, tiny_overrides, tmp_path, monkeypatch):
    real_build, real_probes = embed_module.build_model, evaluation_module._probes

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

"""Reliability, second pass: whatever one checkpoint does is that checkpoint's recorded
failure; only infrastructure failures stop a run, naming the path and why."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import ssl_eval.embed as embed_module
import ssl_eval.evaluation as evaluation_module
from ssl_eval.embed import embed_or_record_failure
from ssl_eval.evaluation import compute_parts_or_record_failure
from ssl_eval.planning import PARTS, plan
from ssl_eval.report import collect
from ssl_eval.store.checkpoints import discover
from ssl_eval.store.errors import DataSetError, WorkdirError
from ssl_eval.workspace import Workspace


class _Odd(Exception):
    """An exception type nobody anticipates."""


RAISED = [TypeError("factory() got an unexpected keyword 'in_channels'"), AttributeError("'NoneType' has no attribute 'fc'"),
          KeyError("backbone"), ZeroDivisionError("division by zero"), RecursionError("maximum recursion depth"),
          NotImplementedError("abstract"), _Odd("[/x] odd"), AssertionError("shape")]


@pytest.mark.parametrize("exc", RAISED, ids=lambda e: type(e).__name__)
def test_any_exception_of_one_checkpoint_is_its_recorded_failure(exc, tiny_store, tiny_config, tmp_path, monkeypatch):
    ws = Workspace.at(tmp_path / "w")
    refs = discover(tiny_store)[:3]
    bad = refs[1]
    real = embed_module.build_model

    def build(loaded, family, *, in_channels, path):
        if path == bad.path:
            raise exc
        return real(loaded, family, in_channels=in_channels, path=path)

    monkeypatch.setattr(embed_module, "build_model", build)
    out = {ref.id: embed_or_record_failure(ref, tiny_config, ws) for ref in refs}
    assert out[bad.id]["status"] == "failed"
    assert [o["status"] for cid, o in out.items() if cid != bad.id] == ["embedded"] * (len(refs) - 1)
    failure = ws.records.get(bad.id, "failure")
    assert failure["type"] == type(exc).__name__ and failure["stage"] == "embed"
    assert failure["error"] == f"{bad.path}: {type(exc).__name__}: {exc}"
    assert failure["permanent"]  # the same bytes fail the same way: retried once the file changes
    assert [f["id"] for f in collect(ws)["failures"]] == [bad.id]
    assert plan(refs, tiny_config, ws, tracking_uri=None).skipped_failed == (bad.id,)


@pytest.mark.parametrize("exc", [OSError(5, "Input/output error"), MemoryError(), RuntimeError("CUDA error: unspecified launch failure")],
                         ids=lambda e: type(e).__name__)
def test_transient_failures_are_retried_next_scan_and_cleared(exc, tiny_store, tiny_config, tmp_path, monkeypatch):
    ws = Workspace.at(tmp_path / "w")
    bad = discover(tiny_store)[0]
    monkeypatch.setattr(embed_module, "build_model", lambda *a, **k: (_ for _ in ()).throw(exc))
    assert embed_or_record_failure(bad, tiny_config, ws)["status"] == "failed"
    assert not ws.records.get(bad.id, "failure")["permanent"]
    monkeypatch.undo()
    again = plan(discover(tiny_store), tiny_config, ws, tracking_uri=None)
    assert bad.id in [i.ref.id for i in again.items if i.embed] and not again.skipped_failed
    assert embed_or_record_failure(bad, tiny_config, ws)["status"] == "embedded"
    assert ws.records.get(bad.id, "failure") is None


def test_a_metric_crash_is_that_checkpoints_failure_and_the_next_run_clears_it(tiny_store, tiny_config, tmp_path, monkeypatch):
    ws = Workspace.at(tmp_path / "w")
    refs = discover(tiny_store)[:2]
    for ref in refs:
        embed_or_record_failure(ref, tiny_config, ws)
    real = evaluation_module._probes

    def probes(ckpt, config):
        if ckpt.id == refs[0].id:
            raise IndexError("index 7 is out of bounds")
        return real(ckpt, config)

    monkeypatch.setattr(evaluation_module, "_probes", probes)
    out = {ref.id: compute_parts_or_record_failure(ws, ref.id, ["probe"], tiny_config) for ref in refs}
    assert out[refs[0].id]["probe"]["status"] == "failed" and out[refs[1].id]["probe"]["status"] == "computed"
    failure = ws.records.get(refs[0].id, "failure")
    assert failure["type"] == "IndexError" and failure["stage"] == "measure" and "index 7 is out of bounds" in failure["error"]
    monkeypatch.undo()
    item = next(i for i in plan(discover(tiny_store), tiny_config, ws, tracking_uri=None).items if i.ref.id == refs[0].id)
    assert "probe" in item.parts
    assert compute_parts_or_record_failure(ws, refs[0].id, list(PARTS), tiny_config)["probe"]["status"] == "computed"
    assert ws.records.get(refs[0].id, "failure") is None


def test_an_unwritable_work_dir_stops_the_run_naming_the_path(tiny_store, tiny_config, tmp_path):
    ws = Workspace.at(tmp_path / "w")
    ref = discover(tiny_store)[0]
    ws.records.root.write_text("")  # where the records folder should be (unwritable even for root)
    with pytest.raises(WorkdirError, match=rf"cannot write {ws.records.root} \(.*\).*not the fault of any checkpoint"):
        embed_or_record_failure(ref, tiny_config, ws)
    if os.geteuid() != 0:  # a read-only folder (root would write into it anyway)
        ws.records.root.unlink()
        ws.records.root.mkdir()
        ws.records.root.chmod(stat.S_IRUSR | stat.S_IXUSR)
        try:
            with pytest.raises(WorkdirError, match=r"Permission denied"):
                embed_or_record_failure(ref, tiny_config, ws)
        finally:
            ws.records.root.chmod(stat.S_IRWXU)


def test_an_unreadable_data_set_stops_the_run_once_blaming_the_data_file(tiny_store, tiny_config, tmp_path):
    data = tmp_path / "objects.npz"
    np.savez(data, x=np.array([object(), object()], dtype=object), y=np.zeros(2, int))
    config = tiny_config.model_copy(update={"data": tiny_config.data.model_copy(update={"name": f"npz:{data}"})})
    ws = Workspace.at(tmp_path / "w")
    with pytest.raises(DataSetError, match=r"objects\.npz"):
        embed_or_record_failure(discover(tiny_store)[0], config, ws)
    assert ws.records.ids_with("failure") == []  # never blamed on a checkpoint

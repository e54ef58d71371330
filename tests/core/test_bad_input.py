"""Bad input and faults around one checkpoint never stop the others, and each gives a message that names the file, what was wrong and what to do."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from ssl_eval.common.errors import WorkdirError
from ssl_eval.pipeline.embedding import embed_or_record_failure
from ssl_eval.pipeline.outcomes import Status
from ssl_eval.pipeline.planning import plan
from ssl_eval.reporting.report import collect
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from ssl_eval.sources.datasets import load_split
from tests.helpers import write_checkpoint


def _embed_all(refs, config, ws):
    return {ref.id: embed_or_record_failure(ref, config, ws) for ref in refs}


@pytest.mark.slow
def test_broken_files_are_recorded_reported_and_retried_only_when_changed(tiny_store, tiny_config, tmp_path):
    run = tiny_store / "simclr" / "run-0"
    (run / "epoch=10.ckpt").write_bytes(b"")                                # empty
    (run / "epoch=11.ckpt").write_bytes((run / "epoch=00.ckpt").read_bytes()[:300])  # truncated
    (run / "epoch=12.ckpt").write_text("id,value\n1,2\n")                  # not a checkpoint
    for name in ("epoch=10.ckpt", "epoch=11.ckpt", "epoch=12.ckpt"):
        os.utime(run / name, (0, 0))  # settled
    ws = Workspace.at(tmp_path / "w")
    out = _embed_all(discover(tiny_store), tiny_config, ws)
    failed = {cid: o.error for cid, o in out.items() if o.status is Status.FAILED}
    assert set(failed) == {"simclr/run-0/epoch=10", "simclr/run-0/epoch=11", "simclr/run-0/epoch=12"}
    assert "empty file" in failed["simclr/run-0/epoch=10"]
    assert all(str(run) in e for e in failed.values())
    assert sum(o.status is Status.EMBEDDED for o in out.values()) == 6  # the others are evaluated

    report = collect(ws)
    assert {f["id"] for f in report["failures"]} == set(failed)
    # unchanged bad files are not retried; a fixed file is
    assert set(plan(discover(tiny_store), tiny_config, ws, tracking_uri=None).skipped_failed) == set(failed)
    write_checkpoint(run / "epoch=10.ckpt", epoch=10, seed=77)
    again = plan(discover(tiny_store), tiny_config, ws, tracking_uri=None)
    to_embed = [i.ref for i in again.items if i.embed]
    assert [r.id for r in to_embed] == ["simclr/run-0/epoch=10"]
    assert embed_or_record_failure(to_embed[0], tiny_config, ws).status is Status.EMBEDDED
    assert ws.records.get("simclr/run-0/epoch=10", "failure") is None


@pytest.mark.slow
def test_checkpoint_deleted_between_discovery_and_loading(tiny_store, tiny_config, tmp_path):
    ws = Workspace.at(tmp_path / "w")
    refs = discover(tiny_store)
    (tiny_store / "simclr" / "run-0" / "epoch=01.ckpt").unlink()
    out = _embed_all(refs, tiny_config, ws)
    assert out["simclr/run-0/epoch=01"].status is Status.FAILED
    assert "epoch=01.ckpt" in out["simclr/run-0/epoch=01"].error
    assert not ws.records.get("simclr/run-0/epoch=01", "failure")["permanent"]  # retried next scan
    assert sum(o.status is Status.EMBEDDED for o in out.values()) == 5


@pytest.mark.slow
def test_disk_full_while_writing_zarr(tiny_store, tiny_config, tmp_path, monkeypatch):
    ws = Workspace.at(tmp_path / "w")
    refs = discover(tiny_store)
    assert embed_or_record_failure(refs[0], tiny_config, ws).status is Status.EMBEDDED
    original = zarr.Group.create_array

    def full(self, name, *args, **kwargs):
        if name == "probe_train":
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(zarr.Group, "create_array", full)
    # a full disk is no checkpoint's fault: the run stops, naming the path and why
    with pytest.raises(WorkdirError, match=rf"cannot write {ws.embeddings.root} \(No space left on device\); free space"):
        embed_or_record_failure(refs[1], tiny_config, ws)
    assert ws.records.get(refs[1].id, "failure") is None
    # the store is still readable, with nothing half-written in it
    assert ws.embeddings.provenance(refs[1].id) is None
    assert ws.embeddings.read(refs[0].id, "eval").shape == (200, 128)
    staging = Path(ws.embeddings.root) / ".staging"
    assert not staging.exists() or not any(staging.iterdir())
    monkeypatch.undo()
    assert embed_or_record_failure(refs[1], tiny_config, ws).status is Status.EMBEDDED


def test_data_root_without_the_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_split("fashion-mnist", "train", root=str(tmp_path))
    np.savez(tmp_path / "bad.npz", images=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="expected 'x'"):
        load_split(f"npz:{tmp_path / 'bad.npz'}", "train")

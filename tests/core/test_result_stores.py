"""The result stores: one contract for both implementations of each interface, then what only one does.

The implementations are a local folder and an fsspec URL; only one of them has staging debris or a
commit marker; the Workspace builds them once.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import zarr

from ssl_eval.common import strict_json
from ssl_eval.common.errors import WorkdirError
from ssl_eval.results.answers import FamilyAnalysisRecord, VerdictRecord
from ssl_eval.results.embeddings import EmbeddingArrays, LocalEmbeddingArrays, UrlEmbeddingArrays, open_embedding_arrays
from ssl_eval.results.local_records import LocalRecordFiles
from ssl_eval.results.parts import (
    CheckpointRecord,
    FailureRecord,
    MetricsRecord,
    MirrorNote,
    Part,
    ProbeRecord,
    SettledNote,
    group_of,
    metrics_part,
)
from ssl_eval.results.records import SETTLED, RecordFiles, open_record_files
from ssl_eval.results.url_records import UrlRecordFiles
from ssl_eval.results.workspace import Workspace
from ssl_eval.results.zarr_groups import CHUNK_ROWS

IMPLEMENTATIONS = ["local", "memory"]


def _location(kind: str, tmp_path, name: str) -> str:
    # a fresh memory:// folder per test: the memory file system is one per process
    return str(tmp_path / name) if kind == "local" else f"memory://{uuid.uuid4().hex}/{name}"


@pytest.fixture(params=IMPLEMENTATIONS)
def embeddings(request, tmp_path) -> EmbeddingArrays:
    return open_embedding_arrays(_location(request.param, tmp_path, "embeddings.zarr"))


@pytest.fixture(params=IMPLEMENTATIONS)
def records(request, tmp_path) -> RecordFiles:
    return open_record_files(_location(request.param, tmp_path, "records"))


def test_open_picks_the_implementation_by_location(tmp_path):
    assert isinstance(open_embedding_arrays(tmp_path / "e"), LocalEmbeddingArrays)
    assert isinstance(open_embedding_arrays(f"file://{tmp_path}/e"), LocalEmbeddingArrays)  # file:// is a local folder
    assert isinstance(open_embedding_arrays("memory://x/e"), UrlEmbeddingArrays)
    assert isinstance(open_record_files(tmp_path / "r"), LocalRecordFiles)
    assert isinstance(open_record_files("memory://x/r"), UrlRecordFiles)


def test_embedding_store_contract(embeddings):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    labels = np.arange(6, dtype=np.int64)
    assert embeddings.provenance("f/r/c") is None
    assert not embeddings.is_current("f/r/c", fingerprint="a", embedding_key="k")
    with pytest.raises(FileNotFoundError, match=r"f/r/c: no committed embeddings in .*; embed the checkpoint first"):
        embeddings.read("f/r/c", "eval")

    where = embeddings.write("f/r/c", {"eval": x, "eval_labels": labels}, {"fingerprint": "a", "embedding_key": "k", "epoch": 3})
    assert "f/r/c" in where and str(embeddings.root) in where
    assert embeddings.provenance("f/r/c") == {"fingerprint": "a", "embedding_key": "k", "epoch": 3}
    assert embeddings.is_current("f/r/c", fingerprint="a", embedding_key="k")
    assert not embeddings.is_current("f/r/c", fingerprint="b", embedding_key="k")
    assert not embeddings.is_current("f/r/c", fingerprint="a", embedding_key="other")
    np.testing.assert_array_equal(embeddings.read("f/r/c", "eval"), x)
    np.testing.assert_array_equal(embeddings.read_optional("f/r/c", "eval_labels"), labels)
    assert embeddings.read_optional("f/r/c", "probe_train") is None
    with pytest.raises(KeyError, match=r"f/r/c: no array 'probe_train' in its committed embeddings \(have \['eval', 'eval_labels'\]\)"):
        embeddings.read("f/r/c", "probe_train")

    # a rewrite replaces the whole group: arrays not written again are gone
    embeddings.write("f/r/c", {"eval": x * 2}, {"fingerprint": "b", "embedding_key": "k", "epoch": 3})
    assert embeddings.is_current("f/r/c", fingerprint="b", embedding_key="k")
    np.testing.assert_array_equal(embeddings.read("f/r/c", "eval"), x * 2)
    np.testing.assert_array_equal(embeddings.dask_array("f/r/c", "eval").compute(), x * 2)
    assert embeddings.read_optional("f/r/c", "eval_labels") is None
    assert embeddings.clean_staging() == 0  # no killed writer: nothing to clean

    # another process (a pickled copy, as Dask ships it) sees the same commits
    again = pickle.loads(pickle.dumps(embeddings))
    assert again.provenance("f/r/c") == embeddings.provenance("f/r/c")
    np.testing.assert_array_equal(again.read("f/r/c", "eval"), x * 2)


def test_record_store_contract(records):
    assert records.get("f/r/c", "probe") is None and records.families() == []
    records.put("f/r/c", "checkpoint", {"epoch": np.int64(3), "values": np.array([0.5, 1.0])})
    records.put("f/r/c", "metrics-spectral", {"values": {}})
    records.put("f/r/c", "metrics-clustering", {"values": {"silhouette": float("nan")}})
    records.put("f/r/d", "checkpoint", {"epoch": 4})
    records.put("g/r/e", "failure", {"permanent": True})
    assert records.get("f/r/c", "checkpoint") == {"epoch": 3, "values": [0.5, 1.0]}  # numpy stored as Python values
    assert records.get("f/r/c", "metrics-clustering")["values"]["silhouette"] is None  # strict JSON: NaN stored as null
    assert records.parts("f/r/c", "metrics-") == ["metrics-clustering", "metrics-spectral"]
    assert records.checkpoint_ids() == ["f/r/c", "f/r/d"] and records.checkpoint_ids("g") == []
    assert records.ids_with("failure") == ["g/r/e"]
    assert records.families() == ["f"]  # g holds no checkpoint record
    with pytest.raises(TypeError, match="cannot store object in a record"):
        records.put("f/r/c", "probe", {"values": object()})

    records.delete("f/r/c", "checkpoint")
    records.delete("f/r/c", "checkpoint")  # deleting what is gone is fine
    assert records.checkpoint_ids() == ["f/r/d"]

    # the planner's settled note: any other write or deletion under the family voids it
    records.put("f", SETTLED, {"digest": "x"})
    records.put("g/r/e", "probe", {"values": {}})
    assert records.get("f", SETTLED) == {"digest": "x"}  # another family's change leaves it
    records.put("f/r/d", "probe", {"values": {}})
    assert records.get("f", SETTLED) is None
    records.put("f", SETTLED, {"digest": "y"})
    records.delete("f/r/d", "probe")
    assert records.get("f", SETTLED) is None

    # a damaged record is never trusted (it is recomputed)
    with fsspec.open(str(records.path("f/r/d", "checkpoint")), "w") as damaged:
        damaged.write('{"epoch": ')
    assert records.get("f/r/d", "checkpoint") is None


def test_staged_write_streams_rows_and_commits_only_after_finish(embeddings):
    # rows handed over as a producer finishes them (chunk by chunk, on the writer's thread);
    # nothing is visible before the block ends after finish, and the result is the array
    x = np.arange(2 * (CHUNK_ROWS * 2 + 300), dtype=np.float32).reshape(-1, 2)  # 3 chunks, the last partial
    with embeddings.staged("f/r/c", fingerprint="a", embedding_key="k") as writer:
        writer.create("eval", x.shape, x.dtype)
        for done in range(500, len(x) + 500, 500):
            writer.rows("eval", min(done, len(x)), x)
        writer.put("eval_labels", np.arange(len(x)))
        writer.finish({"fingerprint": "a", "embedding_key": "k"})
        assert embeddings.provenance("f/r/c") is None
    np.testing.assert_array_equal(embeddings.read("f/r/c", "eval"), x)
    assert embeddings.is_current("f/r/c", fingerprint="a", embedding_key="k")


@pytest.mark.parametrize("finish", [True, False])
def test_staged_write_that_fails_or_never_finishes_commits_nothing(embeddings, finish):
    embeddings.write("f/r/c", {"eval": np.ones((3, 2), np.float32)}, {"fingerprint": "a", "embedding_key": "k"})
    with pytest.raises(RuntimeError, match="inference failed"):
        with embeddings.staged("f/r/c", fingerprint="b", embedding_key="k") as writer:
            writer.put("eval", np.zeros((3, 2), np.float32))
            if finish:
                writer.finish({"fingerprint": "b", "embedding_key": "k"})
            raise RuntimeError("inference failed")
    with embeddings.staged("f/r/c", fingerprint="b", embedding_key="k") as writer:
        writer.put("eval", np.zeros((3, 2), np.float32))  # no finish: not committed either
    assert embeddings.provenance("f/r/c") == {"fingerprint": "a", "embedding_key": "k"}
    np.testing.assert_array_equal(embeddings.read("f/r/c", "eval"), np.ones((3, 2), np.float32))
    if isinstance(embeddings, LocalEmbeddingArrays):
        assert not any((embeddings.root / ".staging").iterdir())


def test_a_failed_background_write_is_a_workdir_error_and_commits_nothing(tmp_path, monkeypatch):
    store = LocalEmbeddingArrays(tmp_path / "e.zarr")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zarr.Group, "create_array", full)
    with pytest.raises(WorkdirError, match="free space"):
        store.write("f/r/c", {"eval": np.ones((3, 2), np.float32)}, {"fingerprint": "a", "embedding_key": "k"})
    assert store.provenance("f/r/c") is None and not any((store.root / ".staging").iterdir())


def test_local_embedding_store_cleans_only_dead_writers_debris(tmp_path):
    store = LocalEmbeddingArrays(tmp_path / "e.zarr")
    store.write("f/r/c", {"eval": np.ones((2, 2), np.float32)}, {"fingerprint": "a", "embedding_key": "k"})
    # debris of a killed write is never mistaken for a committed group
    (store.root / ".staging" / "999999999-dead").mkdir(parents=True)
    (store.root / ".staging" / f"{os.getpid()}-live").mkdir(parents=True)
    assert store.clean_staging() == 1
    assert [p.name for p in (store.root / ".staging").iterdir()] == [f"{os.getpid()}-live"]
    assert store.provenance("f/r/c") == {"fingerprint": "a", "embedding_key": "k"}


def test_url_embedding_store_trusts_only_the_commit_marker():
    store = UrlEmbeddingArrays("memory://url-store/e.zarr")
    fs = fsspec.filesystem("memory")
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    # a writer killed after its arrays but before the marker: nothing is committed
    killed = zarr.open_group("memory://url-store/e.zarr/f/r/c/a-k", mode="w")
    killed.create_array("eval", data=x)
    killed.attrs.update({"fingerprint": "a", "embedding_key": "k"})
    assert store.provenance("f/r/c") is None and not store.is_current("f/r/c", fingerprint="a", embedding_key="k")
    with pytest.raises(FileNotFoundError, match="no committed embeddings"):
        store.read("f/r/c", "eval")
    store.write("f/r/c", {"eval": x}, {"fingerprint": "a", "embedding_key": "k", "epoch": 0})
    np.testing.assert_array_equal(store.read("f/r/c", "eval"), x)
    store.write("f/r/c", {"eval": x * 2}, {"fingerprint": "b", "embedding_key": "k", "epoch": 0})
    # older versions go once the new marker lands
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls("/url-store/e.zarr/f/r/c", detail=False)) == ["b-k", "commit.json"]


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
def test_workspace_builds_its_stores_once_and_pickles_without_them(kind, tmp_path):
    results_url = None if kind == "local" else f"memory://{uuid.uuid4().hex}/results"
    ws = Workspace.at(tmp_path / "work", results_url=results_url)
    assert ws.embeddings is ws.embeddings and ws.records is ws.records
    ws.records.put("f/r/c", "checkpoint", {"epoch": 1})
    shipped = pickle.loads(pickle.dumps(ws))  # as Dask ships a task's arguments
    assert shipped == ws and hash(shipped) == hash(ws)
    assert "embeddings" not in vars(shipped) and "records" not in vars(shipped)  # built again on the other side
    assert shipped.records.get("f/r/c", "checkpoint") == {"epoch": 1}
    assert str(shipped.embeddings.root) == f"{ws.shared_root}/embeddings.zarr"


_PREVIOUS_LAYOUT = Path(__file__).parent.parent / "fixtures" / "records_v3"  # written by the flow before the typed records
_MODELS = {Part.CHECKPOINT: CheckpointRecord, Part.FAILURE: FailureRecord, Part.PROBE: ProbeRecord, Part.SETTLED: SettledNote,
           Part.MLFLOW: MirrorNote, Part.CORRELATIONS: FamilyAnalysisRecord, Part.VERDICT: VerdictRecord}


def test_records_of_the_previous_layout_read_as_their_models_and_write_back_unchanged(records):
    files = sorted(_PREVIOUS_LAYOUT.rglob("*.json"))
    assert len(files) == 11
    for file in files:
        key, part = str(file.parent.relative_to(_PREVIOUS_LAYOUT)), file.stem
        raw = json.loads(file.read_text())
        records.put(key, part, raw)
        model = MetricsRecord if group_of(part) else _MODELS[Part(part)]
        found = records.read(key, part, model)
        assert found is not None, file
        records.write(key, part, found)  # nothing lost, nothing added: the layout stays as it was
        assert strict_json.encode(records.get(key, part), sort_keys=True) == strict_json.encode(raw, sort_keys=True), file
    ckpt = records.read("simclr/run-0/epoch=00", Part.CHECKPOINT, CheckpointRecord)
    assert (ckpt.run, ckpt.epoch, ckpt.fingerprint, ckpt.dim) == ("run-0", 0, "31640e9a12d19192bb8d3985c8346cd2", 128)
    failure = records.read("simclr/run-0/epoch=99", Part.FAILURE, FailureRecord)
    assert failure.permanent and failure.stage == "embed" and failure.stands_for(failure.fingerprint, failure.embedding_key, "any")
    assert not failure.stands_for("another file", failure.embedding_key)
    entropy = records.read("simclr/run-0/epoch=00", metrics_part("entropy"), MetricsRecord)
    assert entropy.is_for("31640e9a12d19192bb8d3985c8346cd2", "1660b5c82aa2807c") and entropy.details == {"entropy_z3_reduction": "pca"}
    analysis = records.read("simclr", Part.CORRELATIONS, FamilyAnalysisRecord)
    assert math.isnan(analysis.metrics["rankme"]["spearman_late"]) and analysis.metrics["rankme"]["pick"] == "simclr/run-0/epoch=01"
    verdict = records.read("simclr", Part.VERDICT, VerdictRecord)
    assert verdict.version == 2 and verdict.state == "insufficient" and verdict.inputs_digest is None
    # a record of another shape reads as missing, as a damaged one does: it is recomputed
    records.put("simclr/run-0/epoch=00", Part.PROBE, {"values": {"linear_acc": "high"}})
    assert records.read("simclr/run-0/epoch=00", Part.PROBE, ProbeRecord) is None

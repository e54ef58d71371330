"""Planning and idempotence in the core: only new or stale work is planned, and two processes at once never embed the same checkpoint twice."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from ssl_eval.config import Config
from ssl_eval.pipeline.embedding import embed_or_record_failure
from ssl_eval.pipeline.evaluation import compute_part
from ssl_eval.pipeline.outcomes import Status
from ssl_eval.pipeline.planning import PARTS, plan
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from tests.helpers import store_answers, write_checkpoint


def _evaluate_all(refs, config, ws):
    for ref in refs:
        embed_or_record_failure(ref, config, ws)
        for part in PARTS:
            compute_part(ws, ref.id, part, config)


@pytest.mark.slow
def test_plan_new_cached_config_change_and_rewrite(tiny_store, tiny_config, tmp_path):
    ws = Workspace.at(tmp_path / "w")
    refs = discover(tiny_store)
    first = plan(refs, tiny_config, ws, tracking_uri=None)
    assert len(first.items) == 6 and all(i.embed and i.parts == PARTS for i in first.items)
    assert first.families == ("simclr", "simsiam")

    _evaluate_all(refs, tiny_config, ws)
    store_answers(ws, tiny_config)
    assert plan(refs, tiny_config, ws, tracking_uri=None).empty
    _settled_families_are_skipped_until_anything_changes(refs, tiny_config, ws)

    # a [verdict] or [analysis] setting changed: the records stand, the answers are due again
    for section in ({"verdict": {"window": 4}}, {"analysis": {"late_fraction": 0.25}}):
        answers_only = plan(refs, Config.model_validate({**tiny_config.model_dump(), **section}), ws, tracking_uri=None)
        assert answers_only.items == () and answers_only.families == ("simclr", "simsiam")

    # a metric option changed: every part is stale, nothing needs embedding
    changed = Config.model_validate({**tiny_config.model_dump(), "metrics": {"k": 4}})
    stale = plan(refs, changed, ws, tracking_uri=None)
    assert len(stale.items) == 6 and not any(i.embed for i in stale.items)

    # a rewritten file counts as new
    write_checkpoint(tiny_store / "simclr" / "run-0" / "epoch=01.ckpt", epoch=1, seed=12345)
    rewritten = plan(discover(tiny_store), tiny_config, ws, tracking_uri=None)
    assert [(i.ref.id, i.embed) for i in rewritten.items] == [("simclr/run-0/epoch=01", True)]

    # MLflow never synced: every family is due for its mirror
    assert plan(refs, tiny_config, ws, tracking_uri="sqlite:///x.db").families == ("simclr", "simsiam")


def _settled_families_are_skipped_until_anything_changes(refs, config, ws):
    """The plan above found nothing to do: both families are noted settled until anything changes.

    The next scan reads none of their checkpoints' records (a rescan of a big store costs what
    changed); any record written under a family voids its note.
    """
    from ssl_eval.results.local_records import LocalRecordFiles
    from ssl_eval.results.records import SETTLED

    assert ws.records.get("simclr", SETTLED) and ws.records.get("simsiam", SETTLED)
    reads, get = [], LocalRecordFiles.get

    def counting(self, key, part):
        reads.append(f"{key}/{part}")
        return get(self, key, part)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalRecordFiles, "get", counting)
        assert plan(refs, config, ws, tracking_uri=None).empty
    assert sorted(reads) == [f"simclr/{SETTLED}", f"simsiam/{SETTLED}"]

    # a record written under a family (here: a probe recomputed) voids that family's note only
    probe = ws.records.get("simclr/run-0/epoch=02", "probe")
    ws.records.put("simclr/run-0/epoch=02", "probe", {**probe, "fingerprint": "other"})
    assert ws.records.get("simclr", SETTLED) is None and ws.records.get("simsiam", SETTLED)
    redo = plan(refs, config, ws, tracking_uri=None)
    assert [(i.ref.id, i.parts) for i in redo.items] == [("simclr/run-0/epoch=02", ("probe",))]
    ws.records.put("simclr/run-0/epoch=02", "probe", probe)
    assert plan(refs, config, ws, tracking_uri=None).empty and ws.records.get("simclr", SETTLED)
    # another MLflow URI or another configuration is another digest: checked afresh
    assert plan(refs, config, ws, tracking_uri="sqlite:///y.db").families == ("simclr", "simsiam")


def test_scan_reads_only_files_whose_stat_changed(tiny_store, tmp_path, monkeypatch):

    from ssl_eval.pipeline.planning import scan
    from ssl_eval.sources import checkpoints
    ws = Workspace.at(tmp_path / "w")
    hashed, real = [], checkpoints.fingerprint

    def counting(path: str) -> str:
        hashed.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(checkpoints, "fingerprint", counting)
    first = scan(tiny_store, ws)
    assert len(hashed) == 6
    hashed.clear()
    assert scan(tiny_store, ws) == first and hashed == []  # nothing changed: no file read
    # rewritten in place with the same size and its old mtime put back: ctime still moves
    target = tiny_store / "simclr" / "run-0" / "epoch=01.ckpt"
    old = target.stat()
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))
    again = scan(tiny_store, ws)
    assert hashed == ["epoch=01.ckpt"]
    changed = {r.id: r.fingerprint for r in again}
    assert changed["simclr/run-0/epoch=01"] != {r.id: r.fingerprint for r in first}["simclr/run-0/epoch=01"]
    assert changed["simclr/run-0/epoch=01"] == real(target)
    # a damaged cache file only costs reading every file once more
    for file in (ws.root / "scan").glob("fingerprints-*.json"):
        file.write_text("{not json")
    hashed.clear()
    assert scan(tiny_store, ws) == again and len(hashed) == 6


def test_empty_store_plans_nothing(tmp_path, tiny_config):
    ws = Workspace.at(tmp_path / "w")
    (tmp_path / "store").mkdir()
    assert plan(discover(tmp_path / "store"), tiny_config, ws, tracking_uri=None).empty


def _embed_in_process(args):
    store, workdir, config_json = args
    config = Config.model_validate_json(config_json)
    ref = discover(store)[0]
    return embed_or_record_failure(ref, config, Workspace.at(workdir)).status


@pytest.mark.slow
def test_two_processes_never_embed_the_same_checkpoint_twice(tmp_path, tiny_config):
    write_checkpoint(tmp_path / "store" / "simclr" / "run-0" / "epoch=00.ckpt", epoch=0, seed=0)
    args = (str(tmp_path / "store"), str(tmp_path / "w"), tiny_config.model_dump_json())
    with mp.get_context("spawn").Pool(2) as pool:
        statuses = pool.map(_embed_in_process, [args, args])
    assert sorted(statuses) == [Status.CACHED, Status.EMBEDDED]


def test_a_family_that_borrows_trust_is_refreshed_with_the_families_it_borrows_from(tmp_path):
    """A family without labels borrows trust: its verdict is stale, and planned, when a lender's records change."""
    from ssl_eval.analysis import store_family_analysis, store_pooled_analysis, stored_answers
    from ssl_eval.results.answers import VerdictRecord
    from ssl_eval.verdict.records import store_verdict
    from tests.helpers import synthetic_workspace

    ws = synthetic_workspace(tmp_path / "w")
    for checkpoint_id in ws.records.checkpoint_ids("simsiam"):  # simsiam has no labels
        ws.records.delete(checkpoint_id, "probe")
    verdicts = store_answers(ws)
    assert verdicts["simsiam"].trust_source and verdicts["simsiam"].trust_source.startswith("borrowed from the pooled analysis of simclr")
    assert verdicts["simsiam"].lenders_digest and verdicts["simclr"].lenders_digest is None
    assert stored_answers(ws, "simsiam", answers_key=None).stale == ()
    assert plan([], Config(), ws, tracking_uri=None).empty

    # the lender's probe changes: the plan refreshes the lender and the borrower together
    probe = ws.records.get("simclr/run-0/epoch=03", "probe")
    assert probe is not None
    ws.records.put("simclr/run-0/epoch=03", "probe", {**probe, "values": {"linear_acc": 0.1, "knn_acc": 0.1}})
    assert plan([], Config(), ws, tracking_uri=None).families == ("simclr", "simsiam")

    # a run that refreshed only the lender (as before) leaves the borrower's verdict stale, and says so
    store_verdict(ws, "simclr", store_family_analysis(ws, "simclr"), Config())
    store_pooled_analysis(ws)
    assert stored_answers(ws, "simclr", answers_key=None).stale == ()
    assert stored_answers(ws, "simsiam", answers_key=None).stale == (
        "the families it borrows trust from changed since the verdict",)
    store_verdict(ws, "simsiam", store_family_analysis(ws, "simsiam"), Config())
    assert stored_answers(ws, "simsiam", answers_key=None).stale == ()
    assert ws.records.read("simsiam", "verdict", VerdictRecord).lenders_digest != verdicts["simsiam"].lenders_digest

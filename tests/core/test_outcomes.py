"""The typed outcomes of the embedding and measuring steps.

Enum statuses, checked fields, and what :func:`measure_embedded` makes of an embedding outcome.
"""

from __future__ import annotations

import json

import pytest

import ssl_eval.pipeline.evaluation as evaluation_module
from ssl_eval.pipeline.embedding import embed_or_record_failure
from ssl_eval.pipeline.evaluation import compute_parts, measure_embedded
from ssl_eval.pipeline.outcomes import EmbedOutcome, MeasureOutcome, MonitorSummary, PartOutcome, Status
from ssl_eval.pipeline.planning import PARTS, Plan, WorkItem
from ssl_eval.results.parts import ProbeRecord
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover


def test_a_status_is_an_enum_member_that_reads_as_its_string():
    assert [s.value for s in Status] == ["embedded", "cached", "computed", "no_labels", "failed", "skipped"]
    assert Status("failed") is Status.FAILED and f"{Status.NO_LABELS}" == "no_labels"
    assert json.dumps({"status": Status.CACHED}) == '{"status": "cached"}'


@pytest.mark.parametrize("make, match", [
    (lambda: EmbedOutcome("f/r/c", "embedded"), r"status 'embedded' is not one of .*pass a Status member"),  # type: ignore[arg-type]  # the test: a str is refused
    (lambda: EmbedOutcome("f/r/c", Status.COMPUTED), r"EmbedOutcome of 'f/r/c': status 'computed' is not one of \['embedded', 'cached', 'failed'\]"),
    (lambda: EmbedOutcome("f/r/c", Status.FAILED), r"an error goes with status 'failed' and only with it \(status 'failed', error None\)"),
    (lambda: PartOutcome("f/r/c", "probe", Status.COMPUTED, error="boom"), r"PartOutcome of 'f/r/c': an error goes with status 'failed'"),
    (lambda: PartOutcome("f/r/c", "probe", Status.SKIPPED), r"PartOutcome of 'f/r/c': status 'skipped' is not one of"),
])
def test_an_outcome_refuses_a_status_it_cannot_have(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_measuring_after_a_failed_embedding_skips_every_part_and_carries_the_error(tmp_path, tiny_config):
    failed = EmbedOutcome("simclr/run-0/epoch=00", Status.FAILED, error="epoch=00.ckpt: not a readable torch checkpoint")
    out = measure_embedded(Workspace.at(tmp_path / "w"), failed, list(PARTS), tiny_config)
    assert out == MeasureOutcome(failed, {part: Status.SKIPPED for part in PARTS}, error=failed.error)
    assert out.id == "simclr/run-0/epoch=00" and all(s is Status.SKIPPED for s in out.parts.values())


@pytest.mark.slow
def test_measuring_computes_then_returns_the_current_records(tiny_store, tiny_config, tmp_path):
    ws = Workspace.at(tmp_path / "w")
    ref = discover(tiny_store)[0]
    embedded = embed_or_record_failure(ref, tiny_config, ws)
    assert embedded.status is Status.EMBEDDED and embedded.ready and embedded.seconds is not None
    assert embed_or_record_failure(ref, tiny_config, ws) == EmbedOutcome(ref.id, Status.CACHED, epoch=embedded.epoch)
    first = measure_embedded(ws, embedded, list(PARTS), tiny_config)
    assert first.error is None and set(first.parts) == set(PARTS)
    assert all(s is Status.COMPUTED for s in first.parts.values())
    again = measure_embedded(ws, embedded, list(PARTS), tiny_config)
    assert all(s is Status.CACHED for s in again.parts.values()) and again.flags == first.flags
    probe = compute_parts(ws, ref.id, ["probe"], tiny_config)["probe"]
    assert probe.status is Status.CACHED and probe.seconds is None  # nothing computed now
    assert probe.values == ws.records.get(ref.id, "probe")["values"]
    group = compute_parts(ws, ref.id, ["metrics-spectral"], tiny_config)["metrics-spectral"]
    assert group.values == ws.records.get(ref.id, "metrics-spectral")["values"]


def test_a_probe_without_labels_reads_no_labels(tiny_store, tiny_config, tmp_path, monkeypatch):
    ws = Workspace.at(tmp_path / "w")
    ref = discover(tiny_store)[0]
    embed_or_record_failure(ref, tiny_config, ws)
    monkeypatch.setattr(evaluation_module, "_probes", lambda ckpt, config: ProbeRecord(values={}))
    assert compute_parts(ws, ref.id, ["probe"], tiny_config)["probe"] == PartOutcome(ref.id, "probe", Status.NO_LABELS)
    assert compute_parts(ws, ref.id, ["probe"], tiny_config)["probe"].status is Status.NO_LABELS  # recorded: not tried again


def test_a_measuring_failure_is_every_parts_error(tiny_store, tiny_config, tmp_path, monkeypatch):
    ws = Workspace.at(tmp_path / "w")
    ref = discover(tiny_store)[0]
    embedded = embed_or_record_failure(ref, tiny_config, ws)

    def broken(ckpt, config):
        raise IndexError("index 7 is out of bounds")

    monkeypatch.setattr(evaluation_module, "_probes", broken)
    out = measure_embedded(ws, embedded, ["metrics-spectral", "probe"], tiny_config)
    assert out.parts == {"metrics-spectral": Status.FAILED, "probe": Status.FAILED} and out.flags == ()
    assert out.error is not None and "measuring failed: IndexError: index 7 is out of bounds" in out.error


def test_the_monitor_summary_counts_each_checkpoint_once_from_its_measure_outcome(tiny_store):
    refs = discover(tiny_store)[:3]
    work = Plan(items=tuple(WorkItem(ref, embed=True, parts=("probe",)) for ref in refs), families=("simclr",),
                skipped_failed=("simclr/run-0/epoch=07",))
    measures = [
        MeasureOutcome(EmbedOutcome(refs[0].id, Status.EMBEDDED), {"probe": Status.COMPUTED}, worker="tcp://127.0.0.1:2"),
        MeasureOutcome(EmbedOutcome(refs[1].id, Status.FAILED, error="bad file"), {"probe": Status.SKIPPED}, error="bad file"),
        MeasureOutcome(EmbedOutcome(refs[2].id, Status.CACHED), {"probe": Status.FAILED}, error="measuring failed", worker="tcp://127.0.0.1:1"),
    ]
    out = MonitorSummary.of(work, measures, analyses={}, pooled=None, verdicts={}, tracking_uri=None, tracking_errors={})
    assert out.checkpoints_new_or_stale == 3 and out.families == ("simclr",) and out.known_failed == ("simclr/run-0/epoch=07",)
    assert out.embedded == (refs[0].id,)
    assert out.failed == {refs[1].id: "bad file", refs[2].id: "measuring failed"}
    assert out.dask_workers == ("tcp://127.0.0.1:1", "tcp://127.0.0.1:2")


def test_a_record_written_before_a_metric_joined_the_registry_is_recomputed(tiny_store, tiny_config, tmp_path):
    from ssl_eval.pipeline.planning import pending_parts

    ws = Workspace.at(tmp_path / "w")
    ref = discover(tiny_store)[0]
    embed_or_record_failure(ref, tiny_config, ws)
    compute_parts(ws, ref.id, ["metrics-entropy"], tiny_config)
    record = ws.records.get(ref.id, "metrics-entropy")
    assert record is not None
    del record["values"]["id_twonn"]  # as an earlier version wrote it: same fingerprint and key
    ws.records.put(ref.id, "metrics-entropy", record)
    assert "metrics-entropy" in pending_parts(ws, ref, tiny_config)
    redone = compute_parts(ws, ref.id, ["metrics-entropy"], tiny_config)["metrics-entropy"]
    assert redone.status is Status.COMPUTED and "id_twonn" in ws.records.get(ref.id, "metrics-entropy")["values"]
    assert "metrics-entropy" not in pending_parts(ws, ref, tiny_config)

"""Reliability, second pass: whatever one checkpoint does is that checkpoint's recorded failure.

Only infrastructure failures stop a run, naming the path and why.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import ssl_eval.pipeline.embedding as embed_module
import ssl_eval.pipeline.evaluation as evaluation_module
from ssl_eval.common.errors import DataSetError, WorkdirError
from ssl_eval.pipeline.embedding import embed_or_record_failure
from ssl_eval.pipeline.evaluation import compute_parts_or_record_failure
from ssl_eval.pipeline.outcomes import Status
from ssl_eval.pipeline.planning import PARTS, plan
from ssl_eval.reporting.report import collect
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources import model_building
from ssl_eval.sources.checkpoints import discover
from tests.helpers import evaluate_without_prefect


class _Odd(Exception):
    """An exception type nobody anticipates."""


RAISED = [TypeError("factory() got an unexpected keyword 'in_channels'"), AttributeError("'NoneType' has no attribute 'fc'"),
          KeyError("backbone"), ZeroDivisionError("division by zero"), RecursionError("maximum recursion depth"),
          NotImplementedError("abstract"), _Odd("[/x] odd"), AssertionError("shape")]


@pytest.mark.slow
@pytest.mark.parametrize("exc", RAISED, ids=lambda e: type(e).__name__)
def test_any_exception_of_one_checkpoint_is_its_recorded_failure(exc, tiny_store, tiny_config, tmp_path, monkeypatch):
    ws = Workspace.at(tmp_path / "w")
    refs = discover(tiny_store)[:3]
    bad = refs[1]
    real = model_building.build_model  # what ssl_eval.pipeline.embedding calls

    def build(loaded, family, *, path, **kwargs):
        if path == bad.path:
            raise exc
        return real(loaded, family, path=path, **kwargs)

    monkeypatch.setattr(embed_module, "build_model", build)
    out = {ref.id: embed_or_record_failure(ref, tiny_config, ws) for ref in refs}
    assert out[bad.id].status is Status.FAILED
    assert [o.status for cid, o in out.items() if cid != bad.id] == [Status.EMBEDDED] * (len(refs) - 1)
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
    assert embed_or_record_failure(bad, tiny_config, ws).status is Status.FAILED
    assert not ws.records.get(bad.id, "failure")["permanent"]
    monkeypatch.undo()
    again = plan(discover(tiny_store), tiny_config, ws, tracking_uri=None)
    assert bad.id in [i.ref.id for i in again.items if i.embed] and not again.skipped_failed
    assert embed_or_record_failure(bad, tiny_config, ws).status is Status.EMBEDDED
    assert ws.records.get(bad.id, "failure") is None


@pytest.mark.slow
def test_a_metric_crash_is_that_checkpoints_failure_until_the_file_or_the_metrics_change(tiny_store, tiny_config, tmp_path, monkeypatch):
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
    assert out[refs[0].id]["probe"].status is Status.FAILED and out[refs[1].id]["probe"].status is Status.COMPUTED
    failure = ws.records.get(refs[0].id, "failure")
    assert failure["type"] == "IndexError" and failure["stage"] == "measure" and "index 7 is out of bounds" in failure["error"]
    # the same arrays measured the same way fail the same way: not measured again on every scan
    assert failure["permanent"] and plan(discover(tiny_store), tiny_config, ws, tracking_uri=None).skipped_failed == (refs[0].id,)
    monkeypatch.undo()
    # another way of measuring (the metrics configuration) retries it, and it clears once measured
    config = tiny_config.model_copy(update={"probe": tiny_config.probe.model_copy(update={"max_iter": 999})})
    again = plan(discover(tiny_store), config, ws, tracking_uri=None)
    item = next(i for i in again.items if i.ref.id == refs[0].id)
    assert "probe" in item.parts and refs[0].id not in again.skipped_failed
    assert embed_or_record_failure(item.ref, config, ws).status is Status.CACHED
    assert compute_parts_or_record_failure(ws, refs[0].id, list(PARTS), config)["probe"].status is Status.COMPUTED
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


# --- store names never collide with each other or with the tool's own names (items 3, 4)

NAMES = ["a", "a_", "a ", "a.b", "a~2Eb", "a~", "_a", "~5Fa", "__x", "é", "e\u0301", "a/b".replace("/", "\\"), "x" * 300,
         "x" * 299 + "y", "correlations.json", "correlations~2Ejson", "zarr.json", ".staging", "_pooled", "summary", "~", "-", ""]


def test_escaped_names_are_one_to_one_and_never_the_tools_own():
    from ssl_eval.common.names import escape_name

    escaped = [escape_name(n) for n in NAMES]
    assert len(set(escaped)) == len(NAMES)
    for e in escaped:
        assert e and "." not in e and "/" not in e and not e.startswith("_") and len(e) <= 200
        assert set(e) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_=-~")
    assert escape_name("epoch=03") == "epoch=03" and escape_name("run-0") == "run-0"  # common names read as they are


@pytest.mark.slow
def test_store_names_that_are_the_tools_own_names_never_collide(tiny_config, tmp_path):
    from ssl_eval.analysis import POOLED_KEY, store_family_analysis, store_pooled_analysis
    from ssl_eval.pipeline.evaluation import compute_parts
    from tests.helpers import write_checkpoint

    store = tmp_path / "store"
    hostile = [("_pooled", "run-0", "epoch=00.ckpt"), ("_pooled", "correlations.json", "epoch=01.ckpt"),
               ("zarr.json", "mlflow.json", "zarr.json.ckpt"), ("simclr", "run-0", "epoch=00.ckpt")]
    for i, (family, run, name) in enumerate(hostile):
        write_checkpoint(store / family / run / name, epoch=i, seed=i)
    ws = Workspace.at(tmp_path / "w")
    refs = discover(store)
    assert len({r.id for r in refs}) == 4
    for ref in refs:
        assert embed_or_record_failure(ref, tiny_config, ws).status is Status.EMBEDDED
        compute_parts(ws, ref.id, ["probe"], tiny_config)
    families = sorted({r.family for r in refs})
    for family in families:
        store_family_analysis(ws, family, late_fraction=0.5)
    pooled = store_pooled_analysis(ws, late_fraction=0.5)
    assert sorted(pooled.families) == families and ws.records.get(POOLED_KEY, "correlations")["families"] == list(pooled.families)
    doc = collect(ws)
    assert sorted(doc["families"]) == families and doc["failures"] == []
    assert sum(len(f["checkpoints"]) for f in doc["families"].values()) == 4
    for ref in refs:  # every checkpoint kept its own arrays and records
        assert ws.embeddings.read(ref.id, "eval").shape[0] == 200
        assert ws.records.get(ref.id, "checkpoint")["fingerprint"] == ref.fingerprint


def test_files_that_share_an_id_fail_together_naming_both_and_stay_stable(tiny_store, tiny_config, tmp_path):
    from tests.helpers import write_checkpoint

    run = tiny_store / "simclr" / "run-0"
    write_checkpoint(run / "epoch=01.pt", epoch=1, seed=91)             # beside epoch=01.ckpt
    write_checkpoint(run / "epoch=05 .ckpt", epoch=5, seed=92)          # different names stay different ids
    write_checkpoint(run / "epoch=05_.ckpt", epoch=5, seed=93)
    write_checkpoint(tiny_store / "simsiam" / "epoch=00.ckpt", epoch=0, seed=94)   # <family>/<file> is run "default"
    write_checkpoint(tiny_store / "simsiam" / "default" / "epoch=00.ckpt", epoch=0, seed=95)
    ws = Workspace.at(tmp_path / "w")
    refs = discover(tiny_store)
    ids = [r.id for r in refs]
    assert len(ids) == len(set(ids))
    assert {"simclr/run-0/epoch=05~20", "simclr/run-0/epoch=05_"} <= set(ids)
    clash = {r.id: r for r in refs if r.conflicts}
    assert set(clash) == {"simclr/run-0/epoch=01", "simsiam/default/epoch=00"}
    for ref in clash.values():
        out = embed_or_record_failure(ref, tiny_config, ws)
        assert out.status is Status.FAILED
        assert out.error is not None
        assert all(str(p) in out.error for p in ref.conflicts) and "map to one checkpoint id" in out.error
    # a rerun with nothing changed embeds nothing and keeps both failed
    again = plan(discover(tiny_store), tiny_config, ws, tracking_uri=None)
    assert set(again.skipped_failed) == set(clash)
    # renaming one of them ends the clash: the other is evaluated under the id
    (run / "epoch=01.pt").rename(run / "epoch=01b.pt")
    ref = next(r for r in discover(tiny_store) if r.id == "simclr/run-0/epoch=01")
    assert not ref.conflicts and embed_or_record_failure(ref, tiny_config, ws).status is Status.EMBEDDED
    assert ws.records.get(ref.id, "failure") is None


# --- an unwritable work dir or results URL is named before anything starts (item 7)


@pytest.mark.parametrize("case", ["workdir-under-a-file", "prefect-home-is-a-file", "records-is-a-file", "read-only-results-url"])
def test_unwritable_work_dir_or_results_url_is_named_before_anything_starts(case, tiny_store, tmp_path):
    from typer.testing import CliRunner

    from ssl_eval.cli import app

    work = tmp_path / "w"
    args = ["evaluate", str(tiny_store), "--workdir", str(work), "--quiet"]
    if case == "workdir-under-a-file":
        (tmp_path / "file").write_text("")
        work, bad = tmp_path / "file" / "w", tmp_path / "file" / "w"
        args[3] = str(work)
    elif case == "prefect-home-is-a-file":
        work.mkdir()
        (work / "prefect").write_text("")
        bad = work / "prefect"
    elif case == "records-is-a-file":
        work.mkdir()
        (work / "records").write_text("")
        bad = work / "records"
    else:
        bad = "http://127.0.0.1:9/results/records"
        args += ["--results-url", "http://127.0.0.1:9/results"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"error: the work dir cannot be used: cannot write {bad} (" in result.output
    assert "Nothing was started." in result.output and "Traceback" not in result.output
    assert len(result.output.splitlines()) <= 3


# --- stale, duplicated and deleted results (item 5)


def _synced(ws, client):
    """Sync simclr to MLflow; then no series of any run holds two points at one step."""
    from ssl_eval.integrations.mlflow_mirror import sync_family
    from tests.helpers import mlflow_series

    sync_family(ws, "simclr", tracking_uri=ws.mlflow_uri)
    series = mlflow_series(client)
    assert series and [name for name, points in series.items() if len({s for s, _ in points}) != len(points)] == []


def _history(client, family="simclr", run="run-0"):
    exp = client.get_experiment_by_name(f"ssl-eval/{family}")
    found = client.search_runs([exp.experiment_id], filter_string=f"tags.`ssl_eval.key` = '{family}/{run}'")
    assert len(found) == 1
    run_id = found[0].info.run_id
    return found[0].data.tags, {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in found[0].data.metrics}


@pytest.mark.slow
def test_rewritten_failed_restored_and_deleted_checkpoints_never_leave_stale_or_duplicate_results(
        tmp_path, tiny_config, mlflow_store, no_mlflow_figures):
    # What is checked here are the records, the report and MLflow's points and tags, not the
    # figures each of the five syncs would redraw (most of this test's time).
    from mlflow.tracking import MlflowClient

    from tests.helpers import make_store, write_checkpoint

    store = make_store(tmp_path / "store", {"simclr": 3})
    run = store / "simclr" / "run-0"
    ws = Workspace.at(tmp_path / "w")
    client = MlflowClient(mlflow_store(ws.root / "mlflow.db"))
    evaluate_without_prefect(store, tiny_config, ws)
    _synced(ws, client)

    # a checkpoint replaced by a different file under the same name: its points are replaced
    write_checkpoint(run / "epoch=01.ckpt", epoch=1, seed=4242)
    evaluate_without_prefect(store, tiny_config, ws)
    _synced(ws, client)
    _, points = _history(client)
    new = ws.records.get("simclr/run-0/epoch=01", "probe")["values"]["linear_acc"]
    assert [s for s, _ in points["probe/linear_acc"]] == [0, 1, 2]  # one point per step
    assert dict(points["probe/linear_acc"])[1] == pytest.approx(new)
    # ... and by another epoch's file, keeping the name and the modification time (#26)
    before = os.stat(run / "epoch=01.ckpt")
    (run / "epoch=01.ckpt").write_bytes((run / "epoch=02.ckpt").read_bytes())
    os.utime(run / "epoch=01.ckpt", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert [i.ref.id for i in evaluate_without_prefect(store, tiny_config, ws).items] == ["simclr/run-0/epoch=01"]
    _synced(ws, client)
    _, points = _history(client)
    now = ws.records.get("simclr/run-0/epoch=01", "probe")["values"]["linear_acc"]
    assert now != new and dict(points["probe/linear_acc"])[1] == pytest.approx(now)

    # the file turns bad: its old results go from the report, the analysis and MLflow
    good = (run / "epoch=02.ckpt").read_bytes()
    (run / "epoch=02.ckpt").write_bytes(good[: len(good) // 2])
    os.utime(run / "epoch=02.ckpt", (0, 0))
    evaluate_without_prefect(store, tiny_config, ws)
    doc = collect(ws)
    assert [r["id"] for r in doc["families"]["simclr"]["checkpoints"]] == ["simclr/run-0/epoch=00", "simclr/run-0/epoch=01"]
    assert all(c.get("pick") != "simclr/run-0/epoch=02" for c in doc["families"]["simclr"]["correlations"].values())
    assert [f["id"] for f in doc["failures"]] == ["simclr/run-0/epoch=02"]
    _synced(ws, client)
    tags, points = _history(client)
    assert tags["ssl_eval.failed"] == "epoch=02" and [s for s, _ in points["probe/linear_acc"]] == [0, 1]

    # the good file restored: retried (its embeddings still match), its failure cleared
    (run / "epoch=02.ckpt").write_bytes(good)
    os.utime(run / "epoch=02.ckpt", (0, 0))
    work = evaluate_without_prefect(store, tiny_config, ws)
    assert "simclr/run-0/epoch=02" in [i.ref.id for i in work.items]
    assert ws.records.get("simclr/run-0/epoch=02", "failure") is None and collect(ws)["failures"] == []
    _synced(ws, client)
    tags, points = _history(client)
    assert tags["ssl_eval.failed"] == "none" and [s for s, _ in points["probe/linear_acc"]] == [0, 1, 2]

    # a deleted checkpoint: marked gone, out of the analyses, its history kept
    (run / "epoch=00.ckpt").unlink()
    work = evaluate_without_prefect(store, tiny_config, ws)
    assert work.families == ("simclr",)
    doc = collect(ws)
    assert [g["id"] for g in doc["gone"]] == ["simclr/run-0/epoch=00"]
    assert [r["id"] for r in doc["families"]["simclr"]["checkpoints"]] == ["simclr/run-0/epoch=01", "simclr/run-0/epoch=02"]
    _synced(ws, client)
    tags, points = _history(client)
    assert tags["ssl_eval.gone"] == "epoch=00" and [s for s, _ in points["probe/linear_acc"]] == [0, 1, 2]
    assert ws.records.get("simclr/run-0/epoch=00", "probe") is not None
    # nothing changed: a rerun plans nothing
    assert plan(discover(store), tiny_config, ws, tracking_uri=None).empty


# --- smaller ones (item 8)


def test_text_from_files_never_acts_as_rich_markup():
    import io

    from rich.console import Console

    from ssl_eval.reporting.report import render_table

    hostile = "[/x] [bold red]boom[/] [link=file:///etc/passwd]x[/link] \\[y]"
    doc = {"workdir": "w", "families": {f"fam{hostile}": {"checkpoints": [], "alerts": {"collapse": [f"fam/r/{hostile}"]}, "correlations": {}}},
           "pooled": {}, "failures": [{"id": f"fam/r/{hostile}", "error": f"unexpected key 'layer.[/x]' {hostile}"}],
           "gone": [{"id": f"fam/r/{hostile}", "source": hostile}]}
    out = io.StringIO()
    render_table(doc, console=Console(file=out, width=400, markup=True))  # even on a console that reads markup
    text = out.getvalue()
    assert text.count(hostile) == 6 and "unexpected key 'layer.[/x]'" in text


def test_a_config_file_that_is_not_utf8_is_named(tmp_path):
    from ssl_eval.config import load_config

    text = b'[data]\nname = "digits\xff"\n'
    (tmp_path / "ssl_eval.toml").write_bytes(text)
    at = text.index(b"\xff")  # the offending byte's offset, which the message names
    with pytest.raises(ValueError, match=rf"{tmp_path / 'ssl_eval.toml'} is not UTF-8 text \(byte {at}: invalid start byte\); save it as UTF-8"):
        load_config(store=tmp_path)


def test_an_oversized_n_eval_warns_once_and_records_the_size_used(tiny_store, tiny_config, tmp_path, caplog):
    data = tiny_config.data.model_copy(update={"n_eval": 10**23, "random_state": 8675309})  # a seed no other test caches
    config = tiny_config.model_copy(update={"data": data})
    ws = Workspace.at(tmp_path / "w")
    with caplog.at_level("WARNING", logger="ssl_eval.sources.splits"):
        for ref in discover(tiny_store)[:2]:
            assert embed_or_record_failure(ref, config, ws).status is Status.EMBEDDED
    warnings = [r.getMessage() for r in caplog.records if "data.n_eval" in r.getMessage()]
    assert len(warnings) == 1 and "data.n_eval = 100000000000000000000000 is more than data set 'digits' holds" in warnings[0]
    used = ws.embeddings.read(discover(tiny_store)[0].id, "eval").shape[0]
    assert used < 10**23 and ws.records.get(discover(tiny_store)[0].id, "checkpoint")["n_eval"] == used

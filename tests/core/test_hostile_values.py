"""Reliability, third pass: store values that once broke more than their own checkpoint.

An absurd epoch or complex weights broke more than their own checkpoint, and control codes reached
the terminal raw.
"""

from __future__ import annotations

import os

import pytest
import torch

from ssl_eval.pipeline.planning import plan
from ssl_eval.reporting.report import collect
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from tests.helpers import evaluate_without_prefect, make_store, write_checkpoint


def _with_entries(path, **entries):
    """Rewrite a checkpoint with ``entries`` changed, as settled as before."""
    stat = path.stat()
    torch.save({**torch.load(path, weights_only=True), **entries}, path)
    os.utime(path, (stat.st_atime, stat.st_mtime))
    return path


# --- item 4: an absurd epoch is that checkpoint's failure only


@pytest.mark.slow
def test_an_epoch_outside_the_sane_range_fails_only_its_checkpoint_and_mlflow_gets_the_rest(
        tmp_path, tiny_config, mlflow_store, no_mlflow_figures):
    from mlflow.tracking import MlflowClient

    from ssl_eval.integrations.mlflow_mirror import SUMMARY_EXPERIMENT, sync_family

    store = make_store(tmp_path / "store", {"simclr": 3})
    run = store / "simclr" / "run-0"
    write_checkpoint(run / "epoch=99999999999999999999.ckpt", epoch=3, seed=7)  # the name's epoch wins
    _with_entries(write_checkpoint(run / "last.ckpt", epoch=0, seed=8), epoch=10**30)  # no epoch in the name: the entry's
    _with_entries(write_checkpoint(run / "final.ckpt", epoch=0, seed=9), epoch=float("nan"))
    ws = Workspace.at(tmp_path / "w")
    evaluate_without_prefect(store, tiny_config, ws)
    failures = {f["id"]: f["error"] for f in collect(ws)["failures"]}
    assert set(failures) == {"simclr/run-0/epoch=99999999999999999999", "simclr/run-0/last", "simclr/run-0/final"}
    assert "epoch 99999999999999999999 (from its file name) is not a whole number in 0..1,000,000,000" in failures[
        "simclr/run-0/epoch=99999999999999999999"]
    assert f"epoch {10**30} (from its 'epoch' entry)" in failures["simclr/run-0/last"]
    assert "epoch nan (from its 'epoch' entry)" in failures["simclr/run-0/final"]
    assert all(f.startswith(str(run)) and "rename the file or re-save it" in f for f in failures.values())

    uri = mlflow_store(ws.root / "mlflow.db")
    sync_family(ws, "simclr", tracking_uri=uri)  # raised "Python int too large to convert to SQLite INTEGER"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("ssl-eval/simclr")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    steps = [m.step for m in client.get_metric_history(runs["simclr/run-0"].info.run_id, "probe/linear_acc")]
    assert sorted(steps) == [0, 1, 2]  # the good checkpoints
    assert runs["simclr/correlations"].data.metrics  # the family's correlations
    summary = client.search_runs([client.get_experiment_by_name(SUMMARY_EXPERIMENT).experiment_id])
    assert [r.info.run_name for r in summary] == ["simclr/summary"] and summary[0].data.metrics["checkpoints"] == 3
    # the same files, unchanged: known failures, not read again
    assert set(plan(discover(store), tiny_config, ws, tracking_uri=None).skipped_failed) == set(failures)


# --- item 7: complex weights are refused; a deterministic failure stands until the file changes


@pytest.mark.slow
def test_complex_weights_are_refused_once_and_not_read_again_until_the_file_changes(tiny_store, tiny_config, tmp_path):
    ws = Workspace.at(tmp_path / "w")
    path = tiny_store / "simclr" / "run-0" / "epoch=01.ckpt"
    state = torch.load(path, weights_only=True)["state_dict"]
    weight = next(k for k, v in state.items() if v.is_floating_point() and v.ndim > 1)
    nan = state[weight].to(torch.complex64)
    nan.view(-1)[0] = complex(float("nan"), 0.0)  # a complex NaN, which the float-only NaN check did not see
    _with_entries(path, state_dict={**state, weight: nan})
    work = evaluate_without_prefect(tiny_store, tiny_config, ws)
    failure = ws.records.get("simclr/run-0/epoch=01", "failure")
    assert failure["stage"] == "embed" and failure["permanent"]
    assert failure["error"] == (f"{path}: weight {weight.removeprefix('backbone.')!r} is complex (complex64) where the architecture "
                                "expects real numbers; re-save the checkpoint with real-valued weights.")
    assert len(work.items) == 6 and [f["id"] for f in collect(ws)["failures"]] == ["simclr/run-0/epoch=01"]
    # the next scans do not read it again; a new file is tried
    again = plan(discover(tiny_store), tiny_config, ws, tracking_uri=None)
    assert again.items == () and again.skipped_failed == ("simclr/run-0/epoch=01",)
    write_checkpoint(path, epoch=1, seed=77)
    assert [i.ref.id for i in plan(discover(tiny_store), tiny_config, ws, tracking_uri=None).items] == ["simclr/run-0/epoch=01"]


# --- item 5: control codes from the store never reach a terminal raw

HOSTILE = "x\x1b[2J\x1b]0;owned\x07\u202eevil\nforged line"  # a file name cannot hold a NUL: the TOML below does
RAW = ("\x1b", "\x07", "\u202e", "\x00")


def _clean(text: str) -> bool:
    return not any(code in text for code in RAW) and "\nforged line" not in text


@pytest.mark.slow
def test_control_codes_from_the_store_are_escaped_on_every_terminal_surface(tmp_path, tiny_config, caplog):
    import logging

    from typer.testing import CliRunner

    from ssl_eval.cli import app
    from ssl_eval.common.urls import install_log_redaction

    store = make_store(tmp_path / "store", {"simclr": 3})
    bad = store / HOSTILE / "run-0" / "epoch=00.ckpt"  # a family folder named with control codes, its file broken
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    os.utime(bad, (0, 0))
    ws = Workspace.at(tmp_path / "w")
    evaluate_without_prefect(store, tiny_config, ws)
    assert any(HOSTILE in f["error"] for f in collect(ws)["failures"])  # the record keeps the real name
    for fmt in ("table", "json", "csv"):
        result = CliRunner().invoke(app, ["report", "--workdir", str(ws.root), "--format", fmt])
        assert result.exit_code == 0 and _clean(result.output), (fmt, result.output)
    table = CliRunner().invoke(app, ["report", "--workdir", str(ws.root)], env={"COLUMNS": "1000"}).output
    assert "\\x1b[2J" in table and "\\u202eevil" in table  # shown as escapes

    # a store's ssl_eval.toml: a control character in a key and in a value, refused before anything starts
    (store / "ssl_eval.toml").write_text('[data]\nname = "digits\\u001b]0;t\\u0007\\u0000"\n[families."f\\u001b[2J\\u0000"]\nbogus = 1\n')
    result = CliRunner().invoke(app, ["evaluate", str(store), "--workdir", str(tmp_path / "w2"), "--quiet"])
    assert result.exit_code == 2 and _clean(result.output) and "unknown key 'families.f\\x1b[2J\\x00.bogus'" in result.output, result.output

    # log records (Prefect's console and API handlers read them): escaped, line breaks of the tool's own kept
    install_log_redaction()
    with caplog.at_level("WARNING", logger="ssl_eval.test"):
        logging.getLogger("ssl_eval.test").warning("checkpoint %s failed:\n%s", HOSTILE, "two lines")
    assert caplog.records[-1].getMessage() == "checkpoint x\\x1b[2J\\x1b]0;owned\\x07\\u202eevil\nforged line failed:\ntwo lines"

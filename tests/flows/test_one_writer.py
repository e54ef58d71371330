"""One writer of every answer: the monitor flow stores each family's analysis and verdict.

``ssl-eval report`` prints what MLflow's tags hold, and after a configuration change says the
answers are stale instead of computing them again, until the next run refreshes them.
"""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from flows.monitor import run_monitor
from ssl_eval.analysis import STALE_HINT
from ssl_eval.cli import app
from ssl_eval.integrations.mlflow_tags import STALE_TAG
from ssl_eval.results.answers import VerdictRecord
from ssl_eval.results.workspace import Workspace
from ssl_eval.verdict.answers import TAG_PREFIX, stop_line


def _report(ws: Workspace) -> dict:
    result = CliRunner().invoke(app, ["report", "--workdir", str(ws.root), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _runs(client: MlflowClient, family: str) -> dict:
    exp = client.get_experiment_by_name(f"ssl-eval/{family}")
    return {run.info.run_name: run.data.tags for run in client.search_runs([exp.experiment_id])}


def _assert_report_is_what_mlflow_holds(doc: dict, client: MlflowClient) -> None:
    for family, data in doc["families"].items():
        v, runs = data["verdict"], _runs(client, family)
        tags = runs[f"{family}/correlations"]
        assert data["stale"] is None and tags[STALE_TAG] == "no"
        trusted = ",".join(m for m, t in v["trust"].items() if t["class"] == "trusted") or "none"
        assert (tags[TAG_PREFIX + "summary"], tags[TAG_PREFIX + "progress"], tags[TAG_PREFIX + "keep"],
                tags[TAG_PREFIX + "trusted"], tags[TAG_PREFIX + "trust_source"], tags[TAG_PREFIX + "stop"]) == (
            v["summary"], v["progress"]["state"], v["keep"]["checkpoint"] or "none", trusted, v["trust_source"] or "none",
            stop_line(VerdictRecord.model_validate(v)))
        for run, progress in v["progress"]["runs"].items():
            epoch = v["stop"][run]["epoch"]
            assert runs[f"{family}/{run}"][TAG_PREFIX + "progress"] == progress["state"]
            assert runs[f"{family}/{run}"][TAG_PREFIX + "stop_epoch"] == ("not yet" if epoch is None else str(epoch))


def test_report_prints_what_mlflow_holds_and_says_stale_after_a_configuration_change(
        prefect_harness, tiny_store, tiny_overrides, tmp_path, mlflow_store, no_mlflow_figures):
    ws = Workspace.at(tmp_path / "work")
    uri = mlflow_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    run_monitor(str(tiny_store), str(ws.root), overrides=tiny_overrides, tracking_uri=uri)
    doc = _report(ws)
    assert sorted(doc["families"]) == ["simclr", "simsiam"] and doc["pooled"]["stale"] is None
    _assert_report_is_what_mlflow_holds(doc, client)

    # the store's file changes a [verdict] rule: report reads the stored answers and says they are stale
    (tiny_store / "ssl_eval.toml").write_text("[verdict]\nwindow = 4\n")
    changed = _report(ws)
    for family, data in changed["families"].items():
        assert data["stale"] == {"text": STALE_HINT, "reasons": ["the configuration changed since the verdict"]}
        assert data["verdict"] == doc["families"][family]["verdict"]  # shown as stored, never recomputed
        assert data["verdict"]["config"]["window"] == 6

    # the next run recomputes the answers with the new rule (no checkpoint is embedded or measured again)
    summary = run_monitor(str(tiny_store), str(ws.root), overrides=tiny_overrides, tracking_uri=uri)
    assert summary.checkpoints_new_or_stale == 0 and summary.families == ("simclr", "simsiam")
    again = _report(ws)
    assert all(data["verdict"]["config"]["window"] == 4 for data in again["families"].values())
    _assert_report_is_what_mlflow_holds(again, client)

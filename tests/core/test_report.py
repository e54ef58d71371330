"""The report document (the stored answers, pooled analysis, alerts, stale answers said so) and the HTML page."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ssl_eval.analysis import POOLED_KEY, STALE_HINT, stored_analysis
from ssl_eval.cli import app
from ssl_eval.config import load_config
from ssl_eval.reporting.html_page import render_html
from ssl_eval.reporting.report import _registry_order, collect
from ssl_eval.results.answers import VerdictRecord, note_config_source
from ssl_eval.results.parts import Part
from ssl_eval.results.workspace import Workspace
from tests.helpers import store_answers, synthetic_workspace

FIXTURES = Path(__file__).parent.parent / "fixtures" / "records_v3"


def _record_files(ws: Workspace) -> dict[str, bytes]:
    return {str(p.relative_to(ws.root)): p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file()}


def test_collect_reads_the_stored_answers_without_writing(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", collapse_at="simsiam/run-1/epoch=03", answers=True)
    before = _record_files(ws)
    doc = collect(ws)
    assert _record_files(ws) == before  # reading is pure: nothing written, nothing changed
    assert all(data["stale"] is None for data in doc["families"].values()) and doc["pooled"]["stale"] is None
    assert doc["families"]["simclr"]["correlations"] == _registry_order(stored_analysis(ws, "simclr").metrics)
    assert doc["families"]["simclr"]["verdict"] == ws.records.read("simclr", Part.VERDICT, VerdictRecord).answers()
    simclr, simsiam = doc["families"]["simclr"]["correlations"], doc["families"]["simsiam"]["correlations"]
    # entropy is lower-is-better: it falls with the probe for simclr (signed +1) and rises for simsiam (signed -1)
    assert simclr["entropy_gaussian"]["spearman"] < -0.9 and simclr["entropy_gaussian"]["spearman_signed"] > 0.9
    assert simsiam["entropy_gaussian"]["spearman_signed"] < -0.9
    c = simclr["silhouette"]
    assert c["spearman_ci_low"] <= c["spearman"] <= c["spearman_ci_high"]
    assert {"kendall_late", "pearson_late", "kendall_late_ci_low", "pearson_late_signed"} <= set(c)
    alert = doc["families"]["simsiam"]["alerts"]
    assert alert["collapse"] == ["simsiam/run-1/epoch=03"] and alert["non_finite"] == []
    assert alert["reasons"]["simsiam/run-1/epoch=03"].startswith("centered RankMe 1.00 < 2")
    pooled = doc["pooled"]
    assert pooled["families"] == ("simclr", "simsiam") and pooled["n_checkpoints"] == 28
    # on within-family ranks, simclr's falling and simsiam's rising entropy cancel out
    assert abs(pooled["within_family_rank"]["entropy_gaussian"]["spearman_signed"]) < 0.3
    assert pooled["raw"]["entropy_gaussian"]["spearman_signed"] > 0.5  # simsiam: higher entropy and lower probe
    # pooled selection: any family's checkpoint; simsiam's noisy silhouette picks a weak one
    assert pooled["raw"]["silhouette"]["pick"].startswith("simsiam/") and pooled["raw"]["silhouette"]["regret"] > 0.1
    assert pooled["raw"]["rankme"]["best"].startswith("simclr/")
    assert "regret" not in pooled["within_family_rank"]["silhouette"]
    json.dumps(doc, default=float)  # the CLI's serialisation


def test_collect_says_stale_instead_of_computing(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1)
    doc = collect(ws)  # nothing stored yet: nothing computed either
    assert doc["families"]["simclr"]["verdict"] is None and doc["families"]["simclr"]["correlations"] == {}
    assert doc["families"]["simclr"]["stale"] == {"text": STALE_HINT, "reasons": ["no analysis stored", "no verdict stored"]}
    assert doc["pooled"] == {"stale": {"text": STALE_HINT, "reasons": ["no pooled analysis stored"]}}
    assert ws.records.get("simclr", "correlations") is None and ws.records.get(POOLED_KEY, "correlations") is None
    store_answers(ws)
    stored = collect(ws)["families"]["simclr"]
    # a record changed since: the stored answers are shown as they are, marked stale
    probe = ws.records.get("simclr/run-0/epoch=02", "probe")
    assert probe is not None
    ws.records.put("simclr/run-0/epoch=02", "probe", {**probe, "values": {"linear_acc": 0.1, "knn_acc": 0.1}})
    before = _record_files(ws)
    doc = collect(ws)
    assert _record_files(ws) == before
    entry = doc["families"]["simclr"]
    assert entry["stale"]["reasons"] == ["the records changed since the analysis"]
    assert (entry["verdict"], entry["correlations"]) == (stored["verdict"], stored["correlations"])
    assert doc["families"]["simsiam"]["stale"] is None
    assert doc["pooled"]["stale"]["reasons"] == ["the records changed since the pooled analysis"]
    ws.records.put("simclr/run-0/epoch=02", "probe", probe)
    assert collect(ws)["families"]["simclr"]["stale"] is None


def test_a_configuration_change_makes_the_answers_stale(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "ssl_eval.toml").write_text("[verdict]\nwindow = 6\n")
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1)
    # as the monitor flow's resolve-config task notes it, and its analyse and verdict tasks store
    note_config_source(ws.records, store=str(store), config_file=None, overrides={"metrics.k": 3}, allow_modules=[])
    overrides: dict[str, Any] = {"metrics.k": 3}
    config = load_config(store=store, **overrides)
    store_answers(ws, config)
    assert all(data["stale"] is None for data in collect(ws)["families"].values())
    for edited in ("[verdict]\nwindow = 4\n", "[verdict]\nwindow = 6\n[metrics]\nrandom_state = 7\n"):
        (store / "ssl_eval.toml").write_text(edited)
        doc = collect(ws)
        assert all(data["stale"]["reasons"] == ["the configuration changed since the verdict"]
                   for data in doc["families"].values()), edited
    # a verdict written before verdicts said what they were computed from (the previous layout) is stale too
    old = json.loads((FIXTURES / "simclr" / "verdict.json").read_text())
    ws.records.put("simclr", "verdict", old)
    assert collect(ws, config=config)["families"]["simclr"]["stale"]["reasons"] == [
        "the verdict was written by another version of ssl-eval"]


@pytest.mark.slow
def test_html_page_is_self_contained_with_figures_and_tables(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=4, runs=1, collapse_at="simclr/run-0/epoch=02", answers=True)
    page = render_html(collect(ws))
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)  # nothing fetched (in-page anchors only)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 + 2 * 2  # two heatmaps, then trajectories + scatter per family
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    for text in ("spearman [95% CI]", "Across families (pooled)", "collapse: simclr/run-0/epoch=02: centered RankMe 1.00", "Failed checkpoints"):
        assert text in page


def test_report_cli_writes_html_and_json_has_pooled(tmp_path):
    synthetic_workspace(tmp_path / "w", epochs=3, runs=1, answers=True)
    out = tmp_path / "page" / "report.html"
    result = CliRunner().invoke(app, ["report", "--workdir", str(tmp_path / "w"), "--format", "json", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    doc = json.loads(result.stdout)
    assert set(doc) >= {"families", "pooled", "failures"} and "raw" in doc["pooled"]
    assert math.isfinite(doc["pooled"]["raw"]["silhouette"]["spearman"])


def test_report_on_empty_workdir_has_empty_pooled(tmp_path):
    assert collect(Workspace.at(tmp_path))["pooled"] == {}


def _no_constants(name):
    raise ValueError(f"non-strict JSON constant {name}")


def test_json_report_is_strict_and_opens_each_family_with_its_verdict(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=7, runs=2)
    # a metric that is undefined everywhere: NaN in the records, null in the JSON
    ws.records.put("simclr/run-0/epoch=00", "metrics-geometry",
                   {"fingerprint": "fp-simclr/run-0/epoch=00", "values": {"norm_std": float("nan")}, "flags": []})
    store_answers(ws)
    result = CliRunner().invoke(app, ["report", "--workdir", str(ws.root), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    doc = json.loads(result.stdout, parse_constant=_no_constants)
    assert doc["schema_version"] == 4
    for family, data in doc["families"].items():
        assert list(data)[:2] == ["verdict", "stale"] and data["stale"] is None
        v = data["verdict"]
        assert isinstance(v["summary"], str) and 2 <= v["summary"].count(". ") + 1 <= 5
        assert v["progress"]["state"] in ("improving", "plateaued", "degrading", "collapsed", "insufficient")
        assert all(t["class"] in ("trusted", "weak", "misleading", "unknown") for t in v["trust"].values())
        assert v["keep"]["checkpoint"].startswith(f"{family}/")
        assert set(v["stop"]) == {"run-0", "run-1"}
        assert all(s["epoch"] is None or isinstance(s["epoch"], int) for s in v["stop"].values())
        assert set(v["retrospective"]) == {"run-0", "run-1"}
    assert doc["families"]["simclr"]["checkpoints"][0]["metrics"]["norm_std"] is None
    # simclr's probe and entropy move together all along: entropy is trusted there, read lower-is-better
    assert doc["families"]["simclr"]["verdict"]["trust"]["entropy_gaussian"]["class"] == "trusted"
    assert doc["families"]["simsiam"]["verdict"]["trust"]["entropy_gaussian"]["class"] == "misleading"


def test_table_and_html_open_with_the_verdict(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=7, runs=1, answers=True)
    result = CliRunner().invoke(app, ["report", "--workdir", str(ws.root)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    summary = collect(ws)["families"]["simclr"]["verdict"]["summary"]
    # the summary, then its answers labelled one by one (the summary's own words may say "keep" too)
    assert out.index("simclr:") < out.index("progress") < out.index("keep", out.index("progress")) < out.index("┏")
    assert summary.split(":")[0] in out
    page = render_html(collect(ws))
    cards = re.findall(r'<div class="card">(.*?)</div>', page, flags=re.S)
    assert len(cards) == 2 and page.index('class="card"') < page.index("<h2>Overview</h2>")
    assert all("<dt>keep</dt>" in card and "<dt>stop</dt>" in card for card in cards)

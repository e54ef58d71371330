"""The report document (pooled analysis, alerts, stale-record refresh) and the HTML page."""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from ssl_eval.analysis import ANALYSIS_VERSION, POOLED_KEY
from ssl_eval.cli import app
from ssl_eval.html_report import render_html
from ssl_eval.report import collect
from ssl_eval.workspace import Workspace
from tests.helpers import synthetic_workspace


def test_collect_refreshes_analysis_and_adds_pooled(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", collapse_at="simsiam/run-1/epoch=03")
    doc = collect(ws)  # no correlations record yet: computed and stored on the way
    assert ws.records.get("simclr", "correlations")["version"] == ANALYSIS_VERSION
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
    assert pooled["families"] == ["simclr", "simsiam"] and pooled["n_checkpoints"] == 28
    assert ws.records.get(POOLED_KEY, "correlations")["raw"].keys() == pooled["raw"].keys()
    # on within-family ranks, simclr's falling and simsiam's rising entropy cancel out
    assert abs(pooled["within_family_rank"]["entropy_gaussian"]["spearman_signed"]) < 0.3
    assert pooled["raw"]["entropy_gaussian"]["spearman_signed"] > 0.5  # simsiam: higher entropy and lower probe
    # pooled selection: any family's checkpoint; simsiam's noisy silhouette picks a weak one
    assert pooled["raw"]["silhouette"]["pick"].startswith("simsiam/") and pooled["raw"]["silhouette"]["regret"] > 0.1
    assert pooled["raw"]["rankme"]["best"].startswith("simclr/")
    assert "regret" not in pooled["within_family_rank"]["silhouette"]
    json.dumps(doc, default=float)  # the CLI's serialisation


def test_collect_recomputes_a_stale_record(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1)
    ws.records.put("simclr", "correlations", {"version": 1, "inputs_digest": "old", "late_fraction": 0.25, "metrics": {}})
    doc = collect(ws)
    assert doc["families"]["simclr"]["late_fraction"] == 0.25  # the stored configuration is kept
    assert "silhouette" in doc["families"]["simclr"]["correlations"]


def test_html_page_is_self_contained_with_figures_and_tables(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=4, runs=1, collapse_at="simclr/run-0/epoch=02")
    page = render_html(collect(ws))
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing fetched
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 + 2 * 2  # two heatmaps, then trajectories + scatter per family
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    for text in ("spearman [95% CI]", "Across families (pooled)", "collapse: simclr/run-0/epoch=02: centered RankMe 1.00", "Failed checkpoints"):
        assert text in page


def test_report_cli_writes_html_and_json_has_pooled(tmp_path):
    synthetic_workspace(tmp_path / "w", epochs=3, runs=1)
    out = tmp_path / "page" / "report.html"
    result = CliRunner().invoke(app, ["report", "--workdir", str(tmp_path / "w"), "--format", "json", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    doc = json.loads(result.stdout)
    assert set(doc) >= {"families", "pooled", "failures"} and "raw" in doc["pooled"]
    assert math.isfinite(doc["pooled"]["raw"]["silhouette"]["spearman"])


def test_report_on_empty_workdir_has_empty_pooled(tmp_path):
    assert collect(Workspace.at(tmp_path))["pooled"] == {}

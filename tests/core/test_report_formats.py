"""`report --format csv` (one row per checkpoint, read back by pandas) and a terminal table that fits the terminal's width."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from ssl_eval.cli import app
from ssl_eval.reporting.csv_table import to_csv
from ssl_eval.reporting.report import FAMILY_COLUMNS, collect, render_table
from tests.helpers import synthetic_workspace

runner = CliRunner()


def test_csv_has_one_row_per_checkpoint_with_the_json_values(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=2, answers=True)
    doc = collect(ws)
    result = runner.invoke(app, ["report", "--workdir", str(ws.root), "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.output))
    rows = [(f, r) for f, data in doc["families"].items() for r in data["checkpoints"]]
    assert len(table) == len(rows) == 2 * 2 * 4
    assert list(table.columns[:6]) == ["family", "run", "epoch", "checkpoint", "method", "arch"]
    assert {"silhouette", "entropy_gaussian", "rankme", "probe_linear_acc", "probe_knn_acc", "flags"} <= set(table.columns)
    for (family, r), (_, line) in zip(rows, table.iterrows(), strict=True):
        assert (line["family"], line["run"], line["epoch"]) == (family, r["run"], r["epoch"])
        assert line["rankme"] == pytest.approx(r["metrics"]["rankme"], rel=1e-12)
        assert line["probe_linear_acc"] == pytest.approx(r["probe"]["linear_acc"], rel=1e-12)


def test_csv_leaves_undefined_values_empty_and_defuses_formulas():
    doc = {"families": {"=cmd": {"checkpoints": [
        {"id": "=cmd/run-0/e0", "run": "run-0", "epoch": 0, "method": "@x", "arch": "democnn",
         "metrics": {"rankme": math.nan, "silhouette": 0.5}, "probe": {}, "flags": ["non_finite"]},
    ]}}}
    text = to_csv(doc)
    table = pd.read_csv(io.StringIO(text))
    assert math.isnan(table.loc[0, "rankme"]) and table.loc[0, "silhouette"] == 0.5
    assert table.loc[0, "family"] == "'=cmd" and table.loc[0, "method"] == "'@x"
    assert ",nan" not in text.lower()


@pytest.mark.parametrize("width", [60, 80, 100, 140, 200])
def test_terminal_table_fits_the_width(tmp_path, width):
    doc = collect(synthetic_workspace(tmp_path / "w", epochs=3, runs=1, answers=True))
    out = io.StringIO()
    render_table(doc, Console(file=out, width=width, color_system=None))
    lines = out.getvalue().splitlines()
    assert lines and max(len(line.rstrip()) for line in lines) <= width
    text = out.getvalue()
    assert "rankme" in text and "spearman" in text  # the essentials stay at any width
    if width >= 140:
        assert all(col in text for col in FAMILY_COLUMNS) and "left out" not in text
    else:
        assert "left out for the terminal's width" in text

"""The report: every family's checkpoints, metrics, probe accuracy and correlations.

``collect`` builds the JSON document documented in the README; ``render_table`` prints the
per-family correlation table with rich.
"""

from __future__ import annotations

import math
from typing import Any

from ssl_eval.analysis import families, family_rows
from ssl_eval.metrics import METRICS
from ssl_eval.workspace import Workspace

SCHEMA_VERSION = 1


def failures(workspace: Workspace) -> list[dict[str, Any]]:
    records = workspace.records
    return [{"id": key, **rec} for key in records.ids_with("failure") if (rec := records.get(key, "failure"))]


def collect(workspace: Workspace) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "workdir": str(workspace.root), "families": {}}
    for family in families(workspace):
        analysis = workspace.records.get(family, "correlations") or {"metrics": {}}
        doc["families"][family] = {
            "checkpoints": family_rows(workspace, family),
            "correlations": analysis.get("metrics", {}),
        }
    doc["failures"] = failures(workspace)
    return doc


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.2f}" if isinstance(value, float) else str(value)


def render_table(doc: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=max(Console().width, 118))
    if not doc["families"]:
        console.print(f"No evaluated checkpoints in {doc['workdir']}; run `ssl-eval evaluate STORE` first.")
    for family, data in doc["families"].items():
        rows = data["checkpoints"]
        probes = [r["probe"].get("linear_acc") for r in rows if r["probe"]]
        span = ""
        if probes:
            first, last = rows[0], rows[-1]
            span = (
                f" — {len(rows)} checkpoints, linear probe {first['probe'].get('linear_acc', math.nan):.3f} "
                f"(epoch {first['epoch']}) -> {last['probe'].get('linear_acc', math.nan):.3f} (epoch {last['epoch']})"
            )
        table = Table(title=f"{family}{span}", title_justify="left")
        for col in ("metric", "better", "spearman", "kendall", "pearson", "spearman late", "regret", "pick"):
            table.add_column(col, justify="left" if col in ("metric", "pick") else "right")
        for name, c in data["correlations"].items():
            table.add_row(
                name,
                "higher" if METRICS[name].higher_is_better else "lower",
                _fmt(c.get("spearman")),
                _fmt(c.get("kendall")),
                _fmt(c.get("pearson")),
                _fmt(c.get("spearman_late")),
                "-" if c.get("regret") is None or math.isnan(c["regret"]) else f"{c['regret']:.3f}",
                (c.get("pick") or "-").split("/", 1)[-1],
            )
        console.print(table)
    if doc["failures"]:
        table = Table(title="Failed checkpoints (retried when the file changes)", title_justify="left")
        table.add_column("checkpoint")
        table.add_column("reason")
        for f in doc["failures"]:
            table.add_row(f["id"], f.get("error", ""))
        console.print(table)

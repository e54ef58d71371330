"""Prefect task: a family's correlations, stored and shown as a markdown artifact; a
collapse or non-finite embedding is a warning in the run's log."""

from __future__ import annotations

import math
import re
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from ssl_eval.analysis import ALERT_KINDS, analyze_family, analyze_pooled
from ssl_eval.config import Config
from ssl_eval.workspace import Workspace


def _cell(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:+.2f}"


def _ci(c: dict[str, Any], stat: str) -> str:
    return f"{_cell(c.get(stat))} [{_cell(c.get(stat + '_ci_low'))}, {_cell(c.get(stat + '_ci_high'))}]"


@task(name="analyze-family", task_run_name="analyze {family}")
def analyze(family: str, workspace: Workspace, config: Config) -> dict[str, Any]:
    analysis = analyze_family(workspace, family, late_fraction=config.analysis.late_fraction,
                              collapse_rule=config.verdict.collapse_rule())
    found = analysis["alerts"]
    for kind in ALERT_KINDS:
        if found[kind]:
            listed = ", ".join(f"{cid} ({found['reasons'][cid]})" if cid in found.get("reasons", {}) else cid
                               for cid in found[kind])
            get_run_logger().warning("%s alert in %s: %d checkpoint(s): %s", kind, family, len(found[kind]), listed)
    with workspace.lock("pooled-analysis"):  # all families so far; `ssl-eval report` refreshes it when stale
        analyze_pooled(workspace, late_fraction=config.analysis.late_fraction)
    lines = [
        f"# {family}: label-free metrics vs linear probe ({analysis['n_with_probe']} checkpoints)",
        "",
        "signed: x(+1 higher-is-better, -1 lower-is-better); [bootstrap 95% CI]",
        "",
        "| metric | spearman [95% CI] | kendall | pearson | signed | signed late | regret |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in analysis["metrics"].items():
        lines.append(
            f"| {name} | {_ci(c, 'spearman')} | {_cell(c['kendall'])} | {_cell(c['pearson'])} "
            f"| {_cell(c['spearman_signed'])} | {_cell(c['spearman_late_signed'])} | {_cell(c['regret'])} |"
        )
    create_markdown_artifact("\n".join(lines), key="correlations-" + re.sub(r"[^a-z0-9-]", "-", family.lower()))
    return {"family": family, "n_checkpoints": analysis["n_checkpoints"], "metrics": len(analysis["metrics"]),
            "alerts": {kind: len(found[kind]) for kind in ALERT_KINDS}}

"""Prefect task: a family's correlations, stored and shown as a markdown artifact."""

from __future__ import annotations

import math
import re
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

from ssl_eval.analysis import analyze_family
from ssl_eval.config import Config
from ssl_eval.workspace import Workspace


def _cell(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:+.2f}"


@task(name="analyze-family", task_run_name="analyze {family}")
def analyze(family: str, workdir: str, config: Config) -> dict[str, Any]:
    analysis = analyze_family(Workspace.at(workdir), family, late_fraction=config.analysis.late_fraction)
    lines = [
        f"# {family}: label-free metrics vs linear probe ({analysis['n_with_probe']} checkpoints)",
        "",
        "| metric | spearman | kendall | pearson | spearman late | regret |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in analysis["metrics"].items():
        lines.append(
            f"| {name} | {_cell(c['spearman'])} | {_cell(c['kendall'])} | {_cell(c['pearson'])} "
            f"| {_cell(c['spearman_late'])} | {_cell(c['regret'])} |"
        )
    create_markdown_artifact("\n".join(lines), key="correlations-" + re.sub(r"[^a-z0-9-]", "-", family.lower()))
    return {"family": family, "n_checkpoints": analysis["n_checkpoints"], "metrics": len(analysis["metrics"])}

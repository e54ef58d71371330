"""Prefect task: a family's correlations and verdict, stored and shown as a markdown
artifact (the verdict first; its answers in one line as the artifact's description, which
the UI shows on the artifact's card) and a line in the run's log;
a collapse or non-finite embedding is a warning there."""

from __future__ import annotations

import re
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from ssl_eval.analysis import ALERT_KINDS, analyze_family, analyze_pooled
from ssl_eval.config import Config
from ssl_eval.report_markdown import family_markdown, md_escape
from ssl_eval.verdict.answers import TAG_PREFIX, verdict_tags
from ssl_eval.verdict.records import store_verdict
from ssl_eval.workspace import Workspace


def card_line(verdict: dict[str, Any]) -> str:
    """The verdict's answers in one Markdown line, the artifact's description: the Prefect UI
    shows it on the artifact's card (the artifact itself opens with the full verdict)."""
    tags = verdict_tags(verdict)
    return md_escape(" · ".join(f"{key}: {tags[TAG_PREFIX + key]}" for key in ("progress", "keep", "trusted")))


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
    with workspace.lock("pooled-analysis"):  # all families so far; `ssl-eval report` computes it (unstored) when stale
        analyze_pooled(workspace, late_fraction=config.analysis.late_fraction)
    verdict = store_verdict(workspace, family, analysis, config.verdict)
    create_markdown_artifact(family_markdown(family, analysis, verdict), key="correlations-" + re.sub(r"[^a-z0-9-]", "-", family.lower()),
                             description=card_line(verdict))
    get_run_logger().info("verdict for %s: %s", family, verdict["summary"])
    return {"family": family, "n_checkpoints": analysis["n_checkpoints"], "metrics": len(analysis["metrics"]),
            "alerts": {kind: len(found[kind]) for kind in ALERT_KINDS}, "progress": verdict["progress"]["state"]}

"""Prefect task: a family's verdict, from its stored analysis, stored and shown as a markdown artifact.

For a family without labels, the other families' analyses and the pooled one are read too: the flow
runs it after the ``analyze-pooled`` task. The artifact opens with the verdict; its answers in one
line are the artifact's description, which the UI shows on the artifact's card; a line goes to the
run's log.
"""

from __future__ import annotations

import re

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from ssl_eval.analysis import stored_analysis
from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import FamilyVerdict
from ssl_eval.reporting.markdown import family_markdown, md_escape
from ssl_eval.results.answers import VerdictRecord
from ssl_eval.results.workspace import Workspace
from ssl_eval.verdict.answers import TAG_PREFIX, verdict_tags
from ssl_eval.verdict.records import store_verdict


def card_line(verdict: VerdictRecord) -> str:
    """The verdict's answers in one Markdown line, the artifact's description.

    The Prefect UI shows it on the artifact's card (the artifact itself opens with the full
    verdict).

    Returns:
        The line, escaped for Markdown.
    """
    tags = verdict_tags(verdict)
    return md_escape(" · ".join(f"{key}: {tags[TAG_PREFIX + key]}" for key in ("progress", "keep", "trusted")))


@task(name="verdict", task_run_name="verdict {family}")
def verdict(family: str, workspace: Workspace, config: Config) -> FamilyVerdict:
    """Compute, store and show a family's verdict from its stored analysis (run its analyze task first)."""
    analysis = stored_analysis(workspace, family)  # written by the family's analyze task
    if analysis is None:
        raise FileNotFoundError(f"no analysis of family {family!r} in {workspace.root}; run its analyze task first.")
    found = store_verdict(workspace, family, analysis, config)
    create_markdown_artifact(family_markdown(family, analysis.table(), found.answers()),
                             key="correlations-" + re.sub(r"[^a-z0-9-]", "-", family.lower()), description=card_line(found))
    get_run_logger().info("verdict for %s: %s", family, found.summary)
    return FamilyVerdict(family, progress=found.state, summary=found.summary)

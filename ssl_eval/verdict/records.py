"""The verdict of a family in a work dir: read what it needs from the records, store it.

Called by the verdict task, which the monitor flow runs after the family's analysis and the
pooled analysis (so the verdict is recomputed whenever the analysis is). Other families'
records and the pooled analysis are read only when this family cannot judge trust itself
and must borrow it.
"""

from __future__ import annotations

from typing import Any

from ssl_eval.analysis import POOLED_KEY, families, family_rows, stored_analysis
from ssl_eval.config import VerdictConfig
from ssl_eval.results.workspace import Workspace
from ssl_eval.verdict import family_verdicts
from ssl_eval.verdict.trust import UNKNOWN, classify_all

VERDICT_PART = "verdict"


def stored_config(workspace: Workspace, names: list[str]) -> VerdictConfig:
    """The verdict configuration the flow last used (kept in the verdict records), else the defaults.

    ``ssl-eval report`` recomputes verdicts with the rules the flow ran.

    Args:
        workspace: the work dir whose records to read.
        names: the families whose verdict records to look in, first found wins.

    Returns:
        The first valid stored configuration, or ``VerdictConfig()``.
    """
    for family in names:
        found = (workspace.records.get(family, VERDICT_PART) or {}).get("config")
        if isinstance(found, dict):
            try:
                return VerdictConfig.model_validate(found)
            except ValueError:
                continue  # a record from another version: fall back to the next, then defaults
    return VerdictConfig()


def store_verdict(workspace: Workspace, family: str, analysis: dict[str, Any], config: VerdictConfig) -> dict[str, Any]:
    """Compute ``family``'s verdict, store it as its ``verdict`` record and return it.

    Args:
        workspace: the work dir (rows and other families' records are read from it).
        family: the family to judge.
        analysis: its fresh correlations record.
        config: the verdict's rules and thresholds.

    Returns:
        The verdict, as stored.
    """
    records = workspace.records
    inputs: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {family: (family_rows(workspace, family), analysis)}
    own = classify_all(analysis.get("metrics") or {}, config)
    if all(t.klass == UNKNOWN for t in own.values()):
        for other in families(workspace):
            found = stored_analysis(workspace, other) if other != family else None
            if found and found.get("n_with_probe"):
                inputs[other] = (family_rows(workspace, other), found)
    pooled = stored_analysis(workspace, POOLED_KEY) or {}
    verdict = family_verdicts(inputs, pooled.get("within_family_rank"), config=config, only=[family])[family]
    records.put(family, VERDICT_PART, verdict)
    return verdict

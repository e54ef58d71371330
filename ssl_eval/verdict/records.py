"""The verdict of a family in a work dir: read what it needs from the records, store it.

Called by the verdict task, which the monitor flow runs after the family's analysis and the
pooled analysis (so the verdict is recomputed whenever the analysis is): the flow is the
only writer of verdicts; the surfaces read them. Other families' records and the pooled
analysis are read only when this family cannot judge trust itself and must borrow it.
"""

from __future__ import annotations

from typing import Any

from ssl_eval.analysis import families, family_rows, lenders_digest, stored_analysis, stored_pooled
from ssl_eval.config import Config
from ssl_eval.results.answers import FamilyAnalysisRecord, VerdictRecord, answers_key
from ssl_eval.results.parts import Part
from ssl_eval.results.workspace import Workspace
from ssl_eval.verdict import family_verdicts
from ssl_eval.verdict.trust import UNKNOWN, classify_all

__all__ = ["store_verdict"]


def store_verdict(workspace: Workspace, family: str, analysis: FamilyAnalysisRecord, config: Config) -> VerdictRecord:
    """Compute ``family``'s verdict, store it as its ``verdict`` record and return it.

    The record says what it was computed from: the analysis's ``inputs_digest``, the
    configuration's :func:`~ssl_eval.results.answers.answers_key` and, when the family borrows
    trust, :func:`~ssl_eval.analysis.lenders_digest` of what it borrowed from.

    Args:
        workspace: the work dir (rows and other families' records are read from it).
        family: the family to judge.
        analysis: its fresh correlations record.
        config: the run's configuration (``[verdict]`` holds the rules and thresholds).

    Returns:
        The verdict, as stored.
    """
    rules = config.verdict
    table = analysis.table()
    inputs: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {family: (family_rows(workspace, family), table)}
    own = classify_all(analysis.metrics, rules)
    lenders = None
    if all(t.klass == UNKNOWN for t in own.values()):
        lenders = lenders_digest(workspace, family)
        for other in families(workspace):
            found = stored_analysis(workspace, other) if other != family else None
            if found is not None and found.n_with_probe:
                inputs[other] = (family_rows(workspace, other), found.table())
    pooled = stored_pooled(workspace)
    verdict = family_verdicts(inputs, pooled.within_family_rank if pooled else None, config=rules, only=[family])[family]
    record = VerdictRecord.model_validate({**verdict, "inputs_digest": analysis.inputs_digest,
                                           "answers_key": answers_key(config, family),
                                           **({"lenders_digest": lenders} if lenders else {})})
    workspace.records.write(family, Part.VERDICT, record)
    return record

"""Whether a family's stored answers (its analysis and verdict) still answer for its records and the configuration.

The planner refreshes a family whose answers are stale, and every surface that shows them says so
instead of computing them again (only the flow writes them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ssl_eval.analysis.workdir import ANALYSIS_VERSION, family_rows, rows_digest
from ssl_eval.config import Config, load_config
from ssl_eval.results.answers import SOURCE_KEY, VERDICT_VERSION, ConfigSource, FamilyAnalysisRecord, VerdictRecord
from ssl_eval.results.parts import Part
from ssl_eval.results.workspace import Workspace

__all__ = ["STALE_HINT", "StoredAnswers", "current_config", "stale_reasons", "stored_answers"]

STALE_HINT = "stale, run `ssl-eval evaluate`"


@dataclass(frozen=True)
class StoredAnswers:
    """A family's stored analysis and verdict (None where there is none), and why they are stale (empty when they are current)."""

    family: str
    analysis: FamilyAnalysisRecord | None
    verdict: VerdictRecord | None
    stale: tuple[str, ...]


def stale_reasons(analysis: FamilyAnalysisRecord | None, verdict: VerdictRecord | None, digest: str,
                  answers_key: str | None) -> list[str]:
    """Why stored answers no longer answer for a family, in words.

    Args:
        analysis: its stored analysis, or None.
        verdict: its stored verdict, or None.
        digest: :func:`~ssl_eval.analysis.rows_digest` of its rows now.
        answers_key: :func:`~ssl_eval.results.answers.answers_key` of the configuration now;
            None when it is not known (the configuration is then not compared).

    Returns:
        The reasons; empty when the answers are current.
    """
    reasons = []
    if analysis is None:
        reasons.append("no analysis stored")
    elif analysis.version != ANALYSIS_VERSION:
        reasons.append("the analysis was written by another version of ssl-eval")
    elif analysis.inputs_digest != digest:
        reasons.append("the records changed since the analysis")
    if verdict is None:
        reasons.append("no verdict stored")
    elif verdict.version != VERDICT_VERSION:
        reasons.append("the verdict was written by another version of ssl-eval")
    elif verdict.inputs_digest != digest and "the records changed since the analysis" not in reasons:
        reasons.append("the records changed since the verdict")
    if answers_key is not None and verdict is not None and verdict.version == VERDICT_VERSION \
            and verdict.answers_key != answers_key:
        reasons.append("the configuration changed since the verdict")
    return reasons


def stored_answers(workspace: Workspace, family: str, *, answers_key: str | None, digest: str | None = None) -> StoredAnswers:
    """A family's stored analysis and verdict, and whether they are current.

    Args:
        workspace: the work dir whose records to read.
        family: the family's id.
        answers_key: the configuration's key now, or None (not compared).
        digest: the digest of its rows now, when already computed; None reads them.

    Returns:
        The :class:`StoredAnswers`.
    """
    analysis = workspace.records.read(family, Part.CORRELATIONS, FamilyAnalysisRecord)
    verdict = workspace.records.read(family, Part.VERDICT, VerdictRecord)
    digest = digest if digest is not None else rows_digest(family_rows(workspace, family))
    return StoredAnswers(family, analysis, verdict, tuple(stale_reasons(analysis, verdict, digest, answers_key)))


def current_config(workspace: Workspace) -> tuple[Config | None, str | None]:
    """The configuration as the next monitor run would resolve it.

    It is resolved from where the last run resolved its own
    (:func:`~ssl_eval.results.answers.note_config_source`).

    Args:
        workspace: the work dir.

    Returns:
        (the configuration, None), or (None, why it cannot be known): no monitor run noted
        its source, or the store's file can no longer be read or is invalid.
    """
    source = workspace.records.read(SOURCE_KEY, Part.SOURCE, ConfigSource)
    if source is None:
        return None, "no monitor run noted where it read its configuration"
    try:
        return load_config(source.config_file, store=source.store, allow_modules=source.allow_modules, **source.overrides), None
    except Exception as exc:  # noqa: BLE001 - whatever the store's file system says, the stored answers are still shown
        return None, f"the configuration cannot be read now ({type(exc).__name__}: {exc})"

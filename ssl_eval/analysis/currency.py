"""Whether a family's stored answers (its analysis and verdict) still answer for its records and the configuration.

The planner refreshes a family whose answers are stale, and every surface that shows them says so
instead of computing them again (only the flow writes them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ssl_eval.analysis.workdir import ANALYSIS_VERSION, families, family_rows, rows_digest, stored_analysis, stored_pooled
from ssl_eval.config import Config, load_config
from ssl_eval.results.answers import SOURCE_KEY, VERDICT_VERSION, ConfigSource, FamilyAnalysisRecord, VerdictRecord
from ssl_eval.results.parts import Part
from ssl_eval.results.workspace import Workspace

__all__ = ["STALE_HINT", "StoredAnswers", "current_config", "lenders_digest", "stale_reasons", "stored_answers"]

STALE_HINT = "stale, run `ssl-eval evaluate`"


@dataclass(frozen=True)
class StoredAnswers:
    """A family's stored analysis and verdict (None where there is none), and why they are stale (empty when they are current)."""

    family: str
    analysis: FamilyAnalysisRecord | None
    verdict: VerdictRecord | None
    stale: tuple[str, ...]


def lenders_digest(workspace: Workspace, family: str) -> str:
    """What a family that cannot judge trust itself borrows from: every other family's stored analysis and the pooled one.

    Args:
        workspace: the work dir whose records to read.
        family: the borrowing family.

    Returns:
        32 hex digits; they change when another family's analysis (or the pooled one) is rewritten
        for other records, or a family appears or goes.
    """
    digest = hashlib.blake2b(digest_size=16)
    for other in families(workspace):
        found = stored_analysis(workspace, other) if other != family else None
        if found is not None:
            digest.update(f"{other}\0{found.version}\0{found.inputs_digest}\0{found.n_with_probe}\n".encode())
    pooled = stored_pooled(workspace)
    digest.update(f"pooled\0{pooled.version}\0{pooled.inputs_digest}".encode() if pooled else b"no pooled")
    return digest.hexdigest()


def stale_reasons(analysis: FamilyAnalysisRecord | None, verdict: VerdictRecord | None, digest: str,
                  answers_key: str | None, lenders: str | None = None) -> list[str]:
    """Why stored answers no longer answer for a family, in words.

    Args:
        analysis: its stored analysis, or None.
        verdict: its stored verdict, or None.
        digest: :func:`~ssl_eval.analysis.rows_digest` of its rows now.
        answers_key: :func:`~ssl_eval.results.answers.answers_key` of the configuration now;
            None when it is not known (the configuration is then not compared).
        lenders: :func:`lenders_digest` now, for a verdict that borrowed trust; None: not compared.

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
    if lenders is not None and verdict is not None and verdict.lenders_digest not in (None, lenders):
        reasons.append("the families it borrows trust from changed since the verdict")
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
    lenders = lenders_digest(workspace, family) if verdict is not None and verdict.lenders_digest else None
    return StoredAnswers(family, analysis, verdict, tuple(stale_reasons(analysis, verdict, digest, answers_key, lenders)))


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

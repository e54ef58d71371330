"""The analysis of a work dir: rows read from its records, analyses computed, stored and read back.

Checkpoint rows are read from its records (:func:`family_rows`), each family's and the pooled
analysis computed from them and stored as ``correlations`` records (by the monitor flow only), and
those records read back (:func:`stored_analysis`, undefined statistics as NaN).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ssl_eval.analysis.tables import analyze_rows, pooled_tables
from ssl_eval.common import strict_json
from ssl_eval.results.answers import FamilyAnalysisRecord, PooledAnalysisRecord
from ssl_eval.results.parts import METRICS_PREFIX, CheckpointRecord, FailureRecord, MetricsRecord, Part, ProbeRecord
from ssl_eval.results.workspace import Workspace

__all__ = ["ANALYSIS_VERSION", "POOLED_KEY", "family_rows", "stored_analysis", "stored_pooled", "rows_digest", "families",
           "family_analysis", "store_family_analysis", "pooled_analysis", "pooled_rows", "store_pooled_analysis"]

#: Bumped when the analysis record gains fields: an older stored record is recomputed.
#: 3: collapse alerts by ssl_eval.analysis.collapse (with reasons), the rule stored as ``collapse_rule``.
#: 4: each metric's within-run Spearman (``within_run_*``), the verdict's default trust basis.
ANALYSIS_VERSION = 4
POOLED_KEY = "_pooled"


def family_rows(workspace: Workspace, family: str, *, include_gone: bool = False) -> list[dict[str, Any]]:
    """One row per evaluated checkpoint of ``family``: epoch, metric values, probe accuracies.

    A checkpoint whose current file failed (a ``failure`` record) has no row: its older
    results no longer describe the file. One deleted from the store (a ``gone`` record)
    has none either unless ``include_gone`` (its history, for the MLflow mirror); such rows
    carry ``"gone": True``.

    Args:
        workspace: the work dir whose records to read.
        family: the family's name.
        include_gone: also give rows of checkpoints deleted from the store.

    Returns:
        Rows (``id``, ``run``, ``epoch``, ``method``, ``arch``, ``metrics``, ``probe``, ``flags``)
        sorted by run, then epoch; only results recorded for the file's current fingerprint.
    """
    rows = []
    records = workspace.records
    for checkpoint_id in records.checkpoint_ids(family):
        ckpt = records.read(checkpoint_id, Part.CHECKPOINT, CheckpointRecord)
        if ckpt is None or workspace.embeddings.provenance(checkpoint_id) is None:
            continue
        if records.read(checkpoint_id, Part.FAILURE, FailureRecord) is not None:
            continue
        gone = records.get(checkpoint_id, Part.GONE) is not None
        if gone and not include_gone:
            continue
        metrics: dict[str, float] = {}
        flags: set[str] = set()
        for part in records.parts(checkpoint_id, METRICS_PREFIX):
            rec = records.read(checkpoint_id, part, MetricsRecord)
            if rec is not None and rec.is_for(ckpt.fingerprint):
                metrics.update(rec.values)  # NaN: undefined for this checkpoint
                flags.update(rec.flags)
        probe = records.read(checkpoint_id, Part.PROBE, ProbeRecord)
        rows.append(
            {
                "id": checkpoint_id,
                "run": ckpt.run,
                "epoch": ckpt.epoch,
                "method": ckpt.method,
                "arch": ckpt.arch,
                "metrics": metrics,
                "probe": dict(probe.values) if probe is not None and probe.is_for(ckpt.fingerprint) else {},
                "flags": sorted(flags),
                **({"gone": True} if gone else {}),
            }
        )
    rows.sort(key=lambda r: (r["run"], r["epoch"]))
    return rows


def stored_analysis(workspace: Workspace, family: str) -> FamilyAnalysisRecord | None:
    """A family's stored correlations record, every undefined statistic (stored as null, :mod:`ssl_eval.common.strict_json`) back as NaN.

    Args:
        workspace: the work dir whose records to read.
        family: the family.

    Returns:
        The record, or None when there is none (or it is damaged).
    """
    return workspace.records.read(family, Part.CORRELATIONS, FamilyAnalysisRecord)


def stored_pooled(workspace: Workspace) -> PooledAnalysisRecord | None:
    """The stored pooled analysis (``_pooled/correlations``), undefined statistics as NaN.

    Args:
        workspace: the work dir whose records to read.

    Returns:
        The record, or None when there is none (or it is damaged).
    """
    return workspace.records.read(POOLED_KEY, Part.CORRELATIONS, PooledAnalysisRecord)


def rows_digest(rows: list[dict[str, Any]]) -> str:
    """A short hash of a family's rows: tells whether its analysis or mirror is stale.

    Args:
        rows: checkpoint rows (:func:`family_rows`).

    Returns:
        16 hex digits.
    """
    return hashlib.sha256(strict_json.encode(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]


def families(workspace: Workspace) -> list[str]:
    """The families holding at least one checkpoint record in the work dir.

    Args:
        workspace: the work dir whose records to read.

    Returns:
        Their names, sorted.
    """
    return workspace.records.families()


def family_analysis(workspace: Workspace, family: str, *, late_fraction: float = 0.5,
                    collapse_rule: dict[str, float] | None = None) -> FamilyAnalysisRecord:
    """One family's analysis from its records, without storing it.

    Args:
        workspace: where the family's records are.
        family: the family's name.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].
        collapse_rule: thresholds of the collapse alert (``VerdictConfig.collapse_rule()``).

    Returns:
        The correlations record: version, inputs digest, alerts and per-metric statistics.
    """
    rows = family_rows(workspace, family)
    return FamilyAnalysisRecord.model_validate({
        "family": family, "version": ANALYSIS_VERSION, "inputs_digest": rows_digest(rows),
        **analyze_rows(rows, late_fraction=late_fraction, collapse_rule=collapse_rule)})


def store_family_analysis(workspace: Workspace, family: str, *, late_fraction: float = 0.5,
                   collapse_rule: dict[str, float] | None = None) -> FamilyAnalysisRecord:
    """:func:`family_analysis`, stored as the family's correlations record (the flow).

    Args:
        workspace: the work dir whose records to read.
        family: the family's name.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].
        collapse_rule: thresholds of the collapse alert; None: the defaults.

    Returns:
        The stored record.
    """
    analysis = family_analysis(workspace, family, late_fraction=late_fraction, collapse_rule=collapse_rule)
    workspace.records.write(family, Part.CORRELATIONS, analysis)
    return analysis


def store_pooled_analysis(workspace: Workspace, *, late_fraction: float = 0.5) -> PooledAnalysisRecord:
    """:func:`pooled_analysis`, stored as the ``_pooled`` correlations record (the flow).

    Args:
        workspace: the work dir whose records to read.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].

    Returns:
        The stored record.
    """
    pooled = pooled_analysis(workspace, late_fraction=late_fraction)
    workspace.records.write(POOLED_KEY, Part.CORRELATIONS, pooled)
    return pooled


def pooled_analysis(workspace: Workspace, *, late_fraction: float = 0.5) -> PooledAnalysisRecord:
    """All families' checkpoints together, without storing the result.

    ``raw``: every statistic of :func:`ssl_eval.analysis.correlation_table` over the pooled checkpoints as they
    are; a metric that compares different methods/architectures correlates here and its pick
    (the checkpoint of any family) has a small regret. ``within_family_rank``: metric and
    probe replaced by their within-family ranks first, which removes the differences between
    families and leaves how consistently the metric tracks the probe inside each one (no
    pick or regret there: ranks of different families are not comparable accuracies).

    Args:
        workspace: the work dir whose records to read.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].

    Returns:
        ``version``, ``inputs_digest``, ``families``, ``archs``, ``n_checkpoints``,
        ``late_fraction``, ``raw`` and ``within_family_rank``.
    """
    rows = pooled_rows(workspace)
    return PooledAnalysisRecord.model_validate({
        "version": ANALYSIS_VERSION,
        "inputs_digest": rows_digest(rows),
        "families": families(workspace),
        "archs": sorted({str(r.get("arch")) for r in rows}),
        "n_checkpoints": len(rows),
        "late_fraction": late_fraction,
        **pooled_tables(rows, late_fraction=late_fraction),
    })


def pooled_rows(workspace: Workspace) -> list[dict[str, Any]]:
    """Every family's rows (:func:`family_rows`), each with its ``family``: the pooled analysis's inputs.

    Args:
        workspace: the work dir whose records to read.

    Returns:
        The rows, family by family.
    """
    return [{**r, "family": family} for family in families(workspace) for r in family_rows(workspace, family)]

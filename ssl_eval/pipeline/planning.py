"""What a monitor run has to do: compare the store with the records, and nothing more.

A checkpoint needs embedding when no committed group carries its fingerprint and the data
configuration's key; a metric group (or the probe) needs computing when its record does
not carry the fingerprint and the metric configuration's key. A family needs its analysis
refreshed when its inputs changed since the stored analysis, and its MLflow mirror when
the records changed since the last successful sync (so MLflow catches up after an outage).

A rescan with nothing new costs what changed, not the size of the store: once every
record of a family has been checked and found current, the planner notes the family as
settled with a digest of what it checked against (each file's id and fingerprint, the
family's configuration keys, the MLflow URI). A later scan whose digest for the family is
the same skips the family without reading its records; any record written or deleted
under the family removes the note (``ssl_eval/results/records.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ssl_eval.analysis import families, family_rows, rows_digest, stored_answers
from ssl_eval.common import strict_json
from ssl_eval.common.urls import filesystem, is_url
from ssl_eval.config import Config
from ssl_eval.metrics import GROUPS, METRICS
from ssl_eval.pipeline.evaluation import record_is_current
from ssl_eval.pipeline.failures import known_failure
from ssl_eval.results.answers import VerdictRecord, answers_key
from ssl_eval.results.parts import (
    CheckpointRecord,
    FailureRecord,
    GoneRecord,
    MirrorNote,
    Part,
    SettledNote,
    measured_model,
    metrics_part,
)
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import CheckpointRef, discover

PARTS = tuple(metrics_part(g) for g in GROUPS) + (Part.PROBE.value,)


@dataclass(frozen=True)
class WorkItem:
    """One checkpoint's pending work: whether to embed it, and which record parts to (re)compute."""
    ref: CheckpointRef
    embed: bool
    parts: tuple[str, ...]  # record parts to (re)compute: metrics-<group>, probe


@dataclass(frozen=True)
class Plan:
    """What a run must do: the work items, the families to refresh, and the failed files left alone."""
    items: tuple[WorkItem, ...]
    families: tuple[str, ...]  # families whose analysis or MLflow mirror must be refreshed
    skipped_failed: tuple[str, ...] = field(default=())  # known-bad files, unchanged since

    @property
    def empty(self) -> bool:
        """Whether there is nothing to do: no checkpoint to work on, no family to refresh."""
        return not self.items and not self.families


def scan(store: str | Path, workspace: Workspace, *, settle_seconds: float = 2.0) -> list[CheckpointRef]:
    """:func:`discover` the store, remembering fingerprints in the work dir between scans.

    The fingerprints live in ``scan/fingerprints-<hash of the store>.json`` (local stores
    only): an unchanged file is not read again.

    Args:
        store: the checkpoint store, a folder or an fsspec URL.
        workspace: the work dir.
        settle_seconds: files modified more recently than this are left for a later scan.

    Returns:
        The checkpoints found, as :func:`discover` returns them.
    """
    name = hashlib.blake2b(str(store).encode(), digest_size=8).hexdigest()
    file = workspace.root / "scan" / f"fingerprints-{name}.json"
    try:
        known = json.loads(file.read_text())
    except (OSError, ValueError):
        known = {}  # none yet, or damaged: every file is read once more
    refs = discover(store, settle_seconds=settle_seconds, fingerprints=known)
    if not is_url(store):
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        tmp.write_text(strict_json.encode(known))
        os.replace(tmp, file)
    return refs


def pending_parts(workspace: Workspace, ref: CheckpointRef, config: Config, *, metrics_key: str | None = None) -> tuple[str, ...]:
    """The record parts of ``ref`` that are missing or stale.

    A part is stale when its record carries another fingerprint or metrics key, or lacks a
    metric that the registry now computes for its group (:func:`record_is_current`).

    Args:
        workspace: the work dir.
        ref: the checkpoint as discovered now.
        config: the run's configuration.
        metrics_key: ``config.metrics_key(ref.family)`` when already computed.

    Returns:
        The parts to (re)compute, among ``metrics-<group>`` and ``probe``, in :data:`PARTS` order.
    """
    key = metrics_key or config.metrics_key(ref.family)
    out = []
    for part in PARTS:
        found = workspace.records.read(ref.id, part, measured_model(part))
        if not record_is_current(found, part, fingerprint=ref.fingerprint, metrics_key=key):
            out.append(part)
    return tuple(out)


def _exists(location: str) -> bool:
    if is_url(location):
        fs, key = filesystem(location)
        return bool(fs.exists(key))
    return Path(location).exists()


def mark_gone(workspace: Workspace, refs: list[CheckpointRef], *, settled: frozenset[str] = frozenset()) -> set[str]:
    """Record checkpoints deleted from the store, and unmark those back in it.

    ``gone`` checkpoints are reported, tagged in MLflow, left out of analyses, their history
    kept. A checkpoint merely not listed this scan (a file being rewritten) is not gone while
    its file exists. Families in ``settled`` hold exactly the checkpoints they held when they
    settled and are not read.

    Args:
        workspace: the work dir.
        refs: every checkpoint found by this scan.
        settled: families to skip.

    Returns:
        The families whose set of checkpoints changed.
    """
    found, changed = {ref.id for ref in refs}, set()
    for family in sorted(set(families(workspace)) - settled):
        for checkpoint_id in workspace.records.checkpoint_ids(family):
            marked = workspace.records.get(checkpoint_id, Part.GONE) is not None
            if checkpoint_id in found:
                if marked:
                    workspace.records.delete(checkpoint_id, Part.GONE)
                    changed.add(family)
                continue
            ckpt = workspace.records.read(checkpoint_id, Part.CHECKPOINT, CheckpointRecord)
            source = ckpt.source if ckpt is not None else None
            if not marked and source and not _exists(source):
                workspace.records.write(checkpoint_id, Part.GONE, GoneRecord(source=source, time=time.time()))
                changed.add(family)
    return changed


def settled_digest(family: str, refs: list[CheckpointRef], config: Config, tracking_uri: str | None) -> str:
    """What a family's records were checked against: its files and the configuration.

    Args:
        family: the family's name.
        refs: its checkpoints found by this scan.
        config: the run's configuration (its embedding and metrics keys).
        tracking_uri: the MLflow URI, or None without MLflow.

    Returns:
        32 hex digits (the answers' configuration is part of it: a changed ``[verdict]`` unsettles the family).
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(strict_json.encode([config.embedding_key(family), config.metrics_key(family), tracking_uri, PARTS,
                                       list(METRICS), answers_key(config, family)]).encode())
    for ref in refs:
        digest.update(f"{ref.id}\0{ref.fingerprint}\0{'|'.join(ref.conflicts)}\n".encode())
    return digest.hexdigest()


def plan(refs: list[CheckpointRef], config: Config, workspace: Workspace, *, tracking_uri: str | None) -> Plan:
    """What this run has to do: the checkpoints to embed or measure, and the families to refresh.

    Also cleans the embedding arrays' staging area and notes families found current as settled.

    Args:
        refs: every checkpoint found by this scan.
        config: the run's configuration.
        workspace: the work dir.
        tracking_uri: the MLflow URI (a family whose mirror is behind is refreshed), or None.

    Returns:
        The :class:`Plan`: work items, families to refresh, known-bad checkpoints skipped.
    """
    workspace.embeddings.clean_staging()
    by_family: dict[str, list[CheckpointRef]] = {}
    for ref in refs:
        by_family.setdefault(ref.family, []).append(ref)
    digests = {family: settled_digest(family, frefs, config, tracking_uri) for family, frefs in by_family.items()}
    notes = {family: workspace.records.read(family, Part.SETTLED, SettledNote) for family in by_family}
    settled = frozenset(family for family, digest in digests.items() if (note := notes[family]) and note.digest == digest)
    items: list[WorkItem] = []
    skipped = [checkpoint_id for family in settled for checkpoint_id in (notes[family] or SettledNote(digest="")).skipped_failed]
    for family in sorted(set(by_family) - settled):
        embedding_key, metrics_key = config.embedding_key(family), config.metrics_key(family)
        for ref in by_family[family]:
            if known_failure(workspace.records, ref, embedding_key, metrics_key):
                skipped.append(ref.id)
                continue
            embed = not workspace.embeddings.is_current(ref.id, fingerprint=ref.fingerprint, embedding_key=embedding_key)
            parts = PARTS if embed else pending_parts(workspace, ref, config, metrics_key=metrics_key)
            # a failure that no longer holds for this file (restored, transient, a measuring
            # error) goes through the embed step again, which clears it when the file is good
            embed = embed or workspace.records.read(ref.id, Part.FAILURE, FailureRecord) is not None
            if embed or parts:
                items.append(WorkItem(ref, embed, parts))
    changed = {item.ref.family for item in items} | mark_gone(workspace, refs, settled=settled)
    for family in sorted((set(by_family) | set(families(workspace))) - changed - settled):
        if _needs_refresh(workspace, family, config, tracking_uri):
            changed.add(family)
        elif family in by_family:  # checked through and current: the next scans skip it while nothing changes
            known_bad = tuple(cid for cid in skipped if cid.startswith(f"{family}/"))
            workspace.records.write(family, Part.SETTLED, SettledNote(digest=digests[family], skipped_failed=known_bad,
                                                                      time=time.time()))
    changed |= _borrowers(workspace, set(by_family) | set(families(workspace)), changed)
    return Plan(tuple(items), tuple(sorted(changed)), tuple(sorted(skipped)))


def _borrowers(workspace: Workspace, every: set[str], changed: set[str]) -> set[str]:
    """The families not in ``changed`` whose verdict borrowed trust from a family in it.

    Their verdict (and its MLflow tags) is refreshed in the same run as what it borrowed from.

    Returns:
        Those families.
    """
    out = set()
    for family in sorted(every - changed) if changed else ():
        verdict = workspace.records.read(family, Part.VERDICT, VerdictRecord)
        if verdict is not None and verdict.lenders_digest:
            out.add(family)
    return out


def _needs_refresh(workspace: Workspace, family: str, config: Config, tracking_uri: str | None) -> bool:
    """Whether a family whose checkpoints need no work needs its answers or its MLflow mirror refreshed.

    Its stored analysis or verdict is stale (records, configuration or version changed since), or
    the mirror is behind the records or points elsewhere.

    Returns:
        True when the family must be refreshed.
    """
    digest = rows_digest(family_rows(workspace, family))
    if stored_answers(workspace, family, answers_key=answers_key(config, family), digest=digest).stale:
        return True
    synced = workspace.records.read(family, Part.MLFLOW, MirrorNote)
    return bool(tracking_uri) and (synced is None or synced.digest != digest or synced.tracking_uri != tracking_uri)

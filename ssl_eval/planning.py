"""What a monitor run has to do: compare the store with the records, and nothing more.

A checkpoint needs embedding when no committed group carries its fingerprint and the data
configuration's key; a metric group (or the probe) needs computing when its record does
not carry the fingerprint and the metric configuration's key. A family needs its analysis
refreshed when its inputs changed since the stored analysis, and its MLflow mirror when
the records changed since the last successful sync (so MLflow catches up after an outage).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ssl_eval.analysis import families, family_rows, rows_digest
from ssl_eval.config import Config
from ssl_eval.failures import known_failure
from ssl_eval.metrics import GROUPS
from ssl_eval.storage.checkpoints import CheckpointRef
from ssl_eval.storage.urls import filesystem, is_url
from ssl_eval.workspace import Workspace

PARTS = tuple(f"metrics-{g}" for g in GROUPS) + ("probe",)


@dataclass(frozen=True)
class WorkItem:
    ref: CheckpointRef
    embed: bool
    parts: tuple[str, ...]  # record parts to (re)compute: metrics-<group>, probe


@dataclass(frozen=True)
class Plan:
    items: tuple[WorkItem, ...]
    families: tuple[str, ...]  # families whose analysis or MLflow mirror must be refreshed
    skipped_failed: tuple[str, ...] = field(default=())  # known-bad files, unchanged since

    @property
    def empty(self) -> bool:
        return not self.items and not self.families


def pending_parts(workspace: Workspace, ref: CheckpointRef, config: Config) -> tuple[str, ...]:
    key = config.metrics_key(ref.family)
    out = []
    for part in PARTS:
        record = workspace.records.get(ref.id, part)
        if not record or record.get("fingerprint") != ref.fingerprint or record.get("metrics_key") != key:
            out.append(part)
    return tuple(out)


def _exists(location: str) -> bool:
    if is_url(location):
        fs, key = filesystem(location)
        return bool(fs.exists(key))
    return Path(location).exists()


def mark_gone(workspace: Workspace, refs: list[CheckpointRef]) -> set[str]:
    """Record checkpoints deleted from the store (``gone``: reported, tagged in MLflow, left
    out of analyses, their history kept) and unmark those back in it. A checkpoint merely
    not listed this scan (a file being rewritten) is not gone while its file exists.
    Returns the families whose set of checkpoints changed."""
    found, changed = {ref.id for ref in refs}, set()
    for checkpoint_id in workspace.records.checkpoint_ids():
        marked = workspace.records.get(checkpoint_id, "gone") is not None
        if checkpoint_id in found:
            if marked:
                workspace.records.delete(checkpoint_id, "gone")
                changed.add(checkpoint_id.split("/")[0])
            continue
        source = (workspace.records.get(checkpoint_id, "checkpoint") or {}).get("source")
        if not marked and source and not _exists(source):
            workspace.records.put(checkpoint_id, "gone", {"source": source, "time": time.time()})
            changed.add(checkpoint_id.split("/")[0])
    return changed


def plan(refs: list[CheckpointRef], config: Config, workspace: Workspace, *, tracking_uri: str | None) -> Plan:
    workspace.embeddings.clean_staging()
    items, skipped = [], []
    for ref in refs:
        key = config.embedding_key(ref.family)
        if known_failure(workspace.records, ref, key):
            skipped.append(ref.id)
            continue
        embed = not workspace.embeddings.is_current(ref.id, fingerprint=ref.fingerprint, embedding_key=key)
        parts = PARTS if embed else pending_parts(workspace, ref, config)
        # a failure that no longer holds for this file (restored, transient, a measuring
        # error) goes through the embed step again, which clears it when the file is good
        embed = embed or workspace.records.get(ref.id, "failure") is not None
        if embed or parts:
            items.append(WorkItem(ref, embed, parts))
    changed = {item.ref.family for item in items} | mark_gone(workspace, refs)
    for family in sorted(({ref.family for ref in refs} | set(families(workspace))) - changed):
        digest = rows_digest(family_rows(workspace, family))
        analysis = workspace.records.get(family, "correlations") or {}
        synced = workspace.records.get(family, "mlflow") or {}
        if analysis.get("inputs_digest") != digest or (
            tracking_uri and (synced.get("digest") != digest or synced.get("tracking_uri") != tracking_uri)
        ):
            changed.add(family)
    return Plan(tuple(items), tuple(sorted(changed)), tuple(skipped))

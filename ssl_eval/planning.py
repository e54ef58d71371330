"""What a monitor run has to do: compare the store with the records, and nothing more.

A checkpoint needs embedding when no committed group carries its fingerprint and the data
configuration's key; a metric group (or the probe) needs computing when its record does
not carry the fingerprint and the metric configuration's key. A family needs its analysis
refreshed when its inputs changed since the stored analysis, and its MLflow mirror when
the records changed since the last successful sync (so MLflow catches up after an outage).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ssl_eval.analysis import family_rows, rows_digest
from ssl_eval.config import Config
from ssl_eval.failures import known_failure
from ssl_eval.metrics import GROUPS
from ssl_eval.storage.checkpoints import CheckpointRef
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
        if embed or parts:
            items.append(WorkItem(ref, embed, parts))
    changed = {item.ref.family for item in items}
    for family in sorted({ref.family for ref in refs} - changed):
        digest = rows_digest(family_rows(workspace, family))
        analysis = workspace.records.get(family, "correlations") or {}
        synced = workspace.records.get(family, "mlflow") or {}
        if analysis.get("inputs_digest") != digest or (
            tracking_uri and (synced.get("digest") != digest or synced.get("tracking_uri") != tracking_uri)
        ):
            changed.add(family)
    return Plan(tuple(items), tuple(sorted(changed)), tuple(skipped))

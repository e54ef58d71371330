"""Known failures: when a checkpoint's recorded failure still stands.

A failure record is written by :func:`record_failure` (for
:func:`ssl_eval.pipeline.embedding.embed_or_record_failure`). A
permanent one (the file itself is bad) is skipped by later runs for as long as it still
describes the same attempt: the same file (fingerprint) read the same way (the family's
embedding key) and, for a failure while measuring, measured the same way (its metrics key).
A changed file, or a configuration change that changes how the family is read (``arch``,
``prefix``, ``state_dict_key``, ``layer``, the data) or measured, retries it.
"""

from __future__ import annotations

import time

from ssl_eval.common.errors import is_transient
from ssl_eval.common.urls import redact, redact_text
from ssl_eval.pipeline.outcomes import EmbedOutcome, Status
from ssl_eval.results.parts import FailureRecord, Part
from ssl_eval.results.records import RecordFiles
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import CheckpointRef
from ssl_eval.sources.loading import CheckpointError

__all__ = ["known_failure", "record_failure"]


def known_failure(records: RecordFiles, ref: CheckpointRef, embedding_key: str, metrics_key: str | None = None) -> FailureRecord | None:
    """The failure record of ``ref`` when it still stands, else None.

    Args:
        records: the record store of the workspace.
        ref: the checkpoint as discovered now.
        embedding_key: ``config.embedding_key(ref.family)`` of the current configuration.
        metrics_key: ``config.metrics_key(ref.family)``; a measuring failure recorded with
            another metrics key no longer stands (None: not compared).

    Returns:
        The stored record (with its ``error``) when it is permanent and was recorded for
        this fingerprint and embedding key; None when the checkpoint should be tried.
    """
    failure = records.read(ref.id, Part.FAILURE, FailureRecord)
    return failure if failure is not None and failure.stands_for(ref.fingerprint, embedding_key, metrics_key) else None


def record_failure(workspace: Workspace, ref: CheckpointRef, exc: BaseException, *, embedding_key: str, stage: str) -> EmbedOutcome:
    """Record ``exc`` as the failure of checkpoint ``ref`` and return the FAILED outcome.

    The record holds the error's type and message (naming the file, redacted). A bad file
    stays bad until it changes; a transient error (I/O, memory, device) is retried on the
    next scan.

    Args:
        workspace: the work dir.
        ref: the checkpoint.
        exc: what went wrong.
        embedding_key: ``config.embedding_key(ref.family)``: the failure stands for this reading only.
        stage: ``"embed"`` or ``"measure"``.

    Returns:
        The FAILED :class:`EmbedOutcome` with the error.

    Raises:
        WorkdirError: the record cannot be written.
    """
    error = str(exc) if isinstance(exc, CheckpointError) else f"{redact(ref.path)}: {type(exc).__name__}: {exc}"
    error = redact_text(error)
    workspace.records.write(ref.id, Part.FAILURE, FailureRecord(
        fingerprint=ref.fingerprint, embedding_key=embedding_key, error=error, type=type(exc).__name__, stage=stage,
        path=redact(ref.path), time=time.time(), permanent=not is_transient(exc),
    ))
    return EmbedOutcome(ref.id, Status.FAILED, error=error)

"""Known failures: when a checkpoint's recorded failure still stands.

A failure record is written by :func:`ssl_eval.pipeline.embedding.embed_or_record_failure`. A
permanent one (the file itself is bad) is skipped by later runs for as long as it still
describes the same attempt: the same file (fingerprint) read the same way (the family's
embedding key) and, for a failure while measuring, measured the same way (its metrics key).
A changed file, or a configuration change that changes how the family is read (``arch``,
``prefix``, ``state_dict_key``, ``layer``, the data) or measured, retries it.
"""

from __future__ import annotations

from ssl_eval.results.parts import FailureRecord, Part
from ssl_eval.results.records import RecordFiles
from ssl_eval.sources.checkpoints import CheckpointRef

__all__ = ["known_failure"]


def known_failure(records: RecordFiles, ref: CheckpointRef, embedding_key: str, metrics_key: str | None = None) -> FailureRecord | None:
    """The failure record of ``ref`` when it still stands, else None.

    Args:
        records: the workspace's record files.
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

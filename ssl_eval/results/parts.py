"""The record parts, typed: what each JSON record under ``records/`` holds.

:class:`Part` names every record (``metrics-<group>`` records are named by
:func:`metrics_part` and read back by :func:`group_of`). Each part has a frozen pydantic
model; :class:`TypedRecords` (the base of both record stores) reads a record as its model
and writes a model as JSON.

The models accept every record written before them: the field names are the ones the
records always had, fields added since default to None, and a field a model does not name
is kept (``extra="allow"``) so that reading and writing a record back never drops it. A
record that does not validate is read as missing, as a damaged file is: it is recomputed.
A model is written with the fields it was given (``exclude_unset``), so the files keep the
layout they had.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ssl_eval.common.strict_json import nan_for_null

__all__ = ["METRICS_PREFIX", "CheckpointRecord", "FailureRecord", "GoneRecord", "MeasuredRecord", "MetricsRecord",
           "MirrorNote", "Part", "ProbeRecord", "Record", "SettledNote", "TypedRecords", "group_of", "measured_model", "metrics_part"]

METRICS_PREFIX = "metrics-"


class Part(StrEnum):
    """The name of a record (its file is ``<key>/<part>.json``); ``metrics-<group>`` aside."""

    CHECKPOINT = "checkpoint"  #: a checkpoint's identity and how it was embedded (written by the embed step)
    FAILURE = "failure"  #: why a checkpoint has no current results
    PROBE = "probe"  #: the linear and kNN probe accuracies
    GONE = "gone"  #: the checkpoint's file was deleted from the store
    CORRELATIONS = "correlations"  #: a family's (or the pooled) analysis
    VERDICT = "verdict"  #: a family's four answers
    MLFLOW = "mlflow"  #: the family's MLflow mirror is level with these records
    SETTLED = "settled"  #: the planner found nothing to do in the family
    SOURCE = "source"  #: where the last monitor run read its configuration


def metrics_part(group: str) -> str:
    """The record part of a metric group.

    Args:
        group: a metric group (``spectral``, ``clustering``, ...).

    Returns:
        ``metrics-<group>``.
    """
    return f"{METRICS_PREFIX}{group}"


def group_of(part: str) -> str | None:
    """The metric group a record part holds.

    Args:
        part: a record part's name.

    Returns:
        The group of a ``metrics-<group>`` part, None for any other part.
    """
    return part[len(METRICS_PREFIX):] if part.startswith(METRICS_PREFIX) else None


class Record(BaseModel):
    """A record as stored: frozen; fields it does not name are kept as they were."""

    model_config = ConfigDict(frozen=True, extra="allow")

    def stored(self) -> dict[str, Any]:
        """The JSON-ready fields, as given (a field left at its default is not written).

        Returns:
            Field -> value; NaN stays NaN (the record store writes it as null).
        """
        return self.model_dump(mode="python", exclude_unset=True, by_alias=True)


class CheckpointRecord(Record):
    """A checkpoint's identity (its file's fingerprint) and how it was embedded.

    The embed step also stores the embedding's sizes and reading (``dim``, ``n_eval``,
    ``prefix``, ``layer``, ...), kept as they are.
    """

    fingerprint: str
    run: str
    epoch: int
    checkpoint: str | None = None
    family: str | None = None
    embedding_key: str | None = None
    source: str | None = None
    method: str | None = None
    arch: str | None = None
    dataset: str | None = None
    num_classes: int | None = None


class FailureRecord(Record):
    """Why a checkpoint has no current results: the error, and the attempt it stands for."""

    error: str
    fingerprint: str | None = None
    embedding_key: str | None = None
    metrics_key: str | None = None  # a measuring failure stands for this measuring only
    type: str | None = None
    stage: str = "embed"  # "embed" or "measure"
    path: str | None = None
    time: float | None = None
    permanent: bool = False  # the file itself is bad: not retried until it changes

    def stands_for(self, fingerprint: str, embedding_key: str, metrics_key: str | None = None) -> bool:
        """Whether this failure still describes an attempt: permanent, the same file read the same way.

        Args:
            fingerprint: the checkpoint's fingerprint now.
            embedding_key: the family's embedding key now.
            metrics_key: the family's metrics key now, compared with a measuring failure's
                (None: not compared; nor is it for a failure recorded without one).

        Returns:
            True when trying again would fail the same way.
        """
        if not self.permanent or self.fingerprint != fingerprint or self.embedding_key != embedding_key:
            return False
        return metrics_key is None or self.metrics_key is None or self.metrics_key == metrics_key


class MeasuredRecord(Record):
    """Values computed from a checkpoint's embeddings, stamped with what they were computed from."""

    fingerprint: str | None = None
    metrics_key: str | None = None
    values: dict[str, float] = {}
    seconds: float | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _null_is_nan(cls, value: Any) -> Any:
        """An undefined value is stored as null and read back as NaN."""
        return nan_for_null(value) if isinstance(value, Mapping) else value

    def is_for(self, fingerprint: str, metrics_key: str | None = None) -> bool:
        """Whether the record was computed from this file (and, given, this metric configuration).

        Args:
            fingerprint: the checkpoint's fingerprint now.
            metrics_key: the family's metrics key now; None: not compared.

        Returns:
            True when the record answers for them.
        """
        return self.fingerprint == fingerprint and (metrics_key is None or self.metrics_key == metrics_key)


class MetricsRecord(MeasuredRecord):
    """A metric group's values (part ``metrics-<group>``), its flags and details."""

    flags: tuple[str, ...] = ()
    details: dict[str, Any] | None = None


class ProbeRecord(MeasuredRecord):
    """The probe accuracies (``linear_acc``, ``knn_acc``); empty values: no labels."""


def measured_model(part: str) -> type[MeasuredRecord]:
    """The model of a measured part.

    Args:
        part: ``probe`` or ``metrics-<group>``.

    Returns:
        :class:`ProbeRecord` or :class:`MetricsRecord`.
    """
    return ProbeRecord if part == Part.PROBE else MetricsRecord


class GoneRecord(Record):
    """The checkpoint's file was deleted from the store: where it was, and when that was seen."""

    source: str
    time: float | None = None


class MirrorNote(Record):
    """The family's MLflow mirror was level with the records of ``digest`` at ``tracking_uri``."""

    digest: str
    tracking_uri: str | None = None
    time: float | None = None


class SettledNote(Record):
    """The planner checked the family against ``digest`` and found nothing to do."""

    digest: str
    skipped_failed: tuple[str, ...] = ()
    time: float | None = None


R = TypeVar("R", bound=Record)


class TypedRecords(ABC):
    """Records read as models and written from them; the base of both record stores, which supply ``get`` and ``put`` (the JSON documents)."""

    @abstractmethod
    def get(self, key: str, part: str) -> dict[str, Any] | None:
        """The record as JSON values, or None (see ``ssl_eval.results.records.RecordFiles``).

        Args:
            key: a checkpoint id or a family.
            part: the record's name.

        Returns:
            The record, or None.
        """

    @abstractmethod
    def put(self, key: str, part: str, record: Mapping[str, Any]) -> None:
        """Write one record whole (see ``ssl_eval.results.records.RecordFiles``).

        Args:
            key: a checkpoint id or a family.
            part: the record's name.
            record: JSON-ready values.
        """

    def read(self, key: str, part: str, model: type[R]) -> R | None:
        """The record ``part`` of ``key`` as ``model``.

        Args:
            key: a checkpoint id (``family/run/checkpoint``) or a family.
            part: a :class:`Part` or ``metrics-<group>``.
            model: the record's model (:class:`CheckpointRecord`, :class:`MetricsRecord`, ...).

        Returns:
            The record; None when there is none, or it is damaged or of another shape (it is then recomputed).
        """
        found = self.get(key, part)
        if found is None:
            return None
        try:
            return model.model_validate(found)
        except ValidationError:
            return None

    def write(self, key: str, part: str, record: Record) -> None:
        """Write ``record`` as the record ``part`` of ``key`` (whole or not at all).

        Args:
            key: a checkpoint id or a family.
            part: a :class:`Part` or ``metrics-<group>``.
            record: the record.

        Raises:
            WorkdirError: the storage refuses the write.
        """
        self.put(key, part, record.stored())

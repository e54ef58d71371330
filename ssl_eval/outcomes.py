"""What one step of an evaluation did, as small frozen values: the core returns them, the
Prefect tasks pass them on, the monitor flow sums them up.

Every outcome has a :class:`Status`, an enum whose members are also their own strings
(``Status.FAILED == "failed"``), so a status reads the same in a log line, a JSON document
or a test. The outcomes hold only ids, statuses, counts and messages (never arrays): they
cross process and machine boundaries as task results, pickled or as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["EmbedOutcome", "FamilyAnalysis", "MeasureOutcome", "PartOutcome", "Status"]


class Status(StrEnum):
    """What happened to one checkpoint's embedding or one of its record parts."""

    EMBEDDED = "embedded"  #: embedded now
    CACHED = "cached"  #: already current in the work dir: nothing was computed
    COMPUTED = "computed"  #: a record part computed now
    NO_LABELS = "no_labels"  #: the probe part of a checkpoint without labels (recorded, nothing to compute)
    FAILED = "failed"  #: the error is recorded against the checkpoint; the others go on
    SKIPPED = "skipped"  #: not attempted: the checkpoint was not embedded


def _check_status(outcome: Any, allowed: tuple[Status, ...]) -> None:
    if not isinstance(outcome.status, Status) or outcome.status not in allowed:
        given = outcome.status.value if isinstance(outcome.status, Status) else outcome.status
        raise ValueError(
            f"{type(outcome).__name__} of {outcome.id!r}: status {given!r} is not one of "
            f"{[s.value for s in allowed]}; pass a Status member."
        )
    if (outcome.status is Status.FAILED) != (outcome.error is not None):
        raise ValueError(
            f"{type(outcome).__name__} of {outcome.id!r}: an error goes with status 'failed' and only with it "
            f"(status {outcome.status.value!r}, error {outcome.error!r})."
        )


@dataclass(frozen=True)
class EmbedOutcome:
    """One checkpoint's embedding step.

    Attributes:
        id: the checkpoint id (``family/run/checkpoint``).
        status: EMBEDDED, CACHED or FAILED.
        epoch: the checkpoint's epoch, when known.
        seconds: the time embedding took (EMBEDDED only).
        error: the recorded failure (FAILED only), its type and message naming the file.
        known_failure: FAILED by a failure recorded earlier that still stands (not retried).
    """

    id: str
    status: Status
    epoch: int | None = None
    seconds: float | None = None
    error: str | None = None
    known_failure: bool = False

    def __post_init__(self) -> None:
        _check_status(self, (Status.EMBEDDED, Status.CACHED, Status.FAILED))

    @property
    def ready(self) -> bool:
        """Whether the checkpoint's embeddings are in the store (embedded now or before)."""
        return self.status in (Status.EMBEDDED, Status.CACHED)


@dataclass(frozen=True)
class PartOutcome:
    """One record part (``metrics-<group>`` or ``probe``) of one checkpoint.

    Attributes:
        id: the checkpoint id.
        part: ``metrics-<group>`` or ``probe``.
        status: COMPUTED, CACHED, NO_LABELS (probe only) or FAILED.
        values: the recorded values (metric values, or ``linear_acc`` and ``knn_acc``).
        flags: the metric group's flags (e.g. ``collapsed``, ``non_finite``).
        seconds: the time computing took (COMPUTED only).
        error: the recorded failure (FAILED only).
    """

    id: str
    part: str
    status: Status
    values: Mapping[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    seconds: float | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        _check_status(self, (Status.COMPUTED, Status.CACHED, Status.NO_LABELS, Status.FAILED))


@dataclass(frozen=True)
class MeasureOutcome:
    """One checkpoint's measuring step (all its pending record parts), with the embedding
    step it followed: the monitor flow's whole account of one checkpoint.

    Attributes:
        embedded: the embedding step's outcome.
        parts: record part -> its status (SKIPPED for every part when not embedded).
        flags: the union of the metric groups' flags, sorted.
        error: why the checkpoint has no current records: the embedding's error, else the
            measuring error; None when it was measured.
        worker: the Dask worker the measuring ran on, if any.
    """

    embedded: EmbedOutcome
    parts: Mapping[str, Status] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    error: str | None = None
    worker: str | None = None

    @property
    def id(self) -> str:
        """The checkpoint id (``family/run/checkpoint``), as its embedding outcome has it."""
        return self.embedded.id


@dataclass(frozen=True)
class FamilyAnalysis:
    """A family's analysis (its correlations record), summed up.

    Attributes:
        family: the family.
        n_checkpoints: checkpoints analysed.
        n_metrics: label-free metrics correlated with the probe.
        alerts: alert kind (``collapse``, ``non_finite``) -> number of checkpoints.
    """

    family: str
    n_checkpoints: int
    n_metrics: int
    alerts: Mapping[str, int] = field(default_factory=dict)

"""What one step of an evaluation did, as small frozen values: the core returns them, the Prefect tasks pass them on, the monitor flow sums them up.

Every outcome has a :class:`Status`, an enum whose members are also their own strings
(``Status.FAILED == "failed"``), so a status reads the same in a log line, a JSON document
or a test. The outcomes hold only ids, statuses, counts and messages (never arrays): they
cross process and machine boundaries as task results, pickled or as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssl_eval.pipeline.planning import Plan

__all__ = [
    "EmbedOutcome", "FamilyAnalysis", "FamilyVerdict", "MeasureOutcome", "MirrorOutcome", "MonitorSummary", "PartOutcome",
    "PooledAnalysis", "Status",
]


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
    """One checkpoint's measuring step with the embedding step it followed.

    The measuring step covers all its pending record parts: the monitor flow's whole account of one
    checkpoint.

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


@dataclass(frozen=True)
class PooledAnalysis:
    """The pooled analysis over every family (the ``_pooled`` correlations record), summed up."""

    families: tuple[str, ...]
    n_checkpoints: int


@dataclass(frozen=True)
class FamilyVerdict:
    """A family's stored verdict, summed up: ``progress`` is its state (``improving``, ``plateaued``, ...), ``summary`` its answers in words."""

    family: str
    progress: str
    summary: str


@dataclass(frozen=True)
class MirrorOutcome:
    """A family's MLflow mirror brought level with its records.

    Attributes:
        family: the family.
        runs: training runs mirrored.
        points_logged: metric points logged now (0 when nothing changed).
        experiment_id: the family's MLflow experiment.
    """

    family: str
    runs: int
    points_logged: int
    experiment_id: str


@dataclass(frozen=True)
class MonitorSummary:
    """What one monitor run did: the result of the ``monitor`` flow (and ``run_monitor``).

    Attributes:
        checkpoints_new_or_stale: checkpoints the plan gave work to.
        families: families whose analysis or MLflow mirror was refreshed.
        embedded: ids embedded by this run.
        failed: id -> error, for checkpoints that failed in this run (embedding or measuring).
        known_failed: ids of known-bad files, unchanged since they failed, not tried again.
        analyses: family -> its analysis, summed up.
        pooled: the pooled analysis over every family, None when no family was refreshed.
        verdicts: family -> its verdict, summed up.
        tracking_uri: the MLflow tracking URI mirrored to, None when not mirrored.
        tracking_errors: family -> why its MLflow mirror failed (the next run syncs it).
        dask_workers: the Dask workers the metric tasks ran on.
    """

    checkpoints_new_or_stale: int
    families: tuple[str, ...]
    embedded: tuple[str, ...]
    failed: Mapping[str, str]
    known_failed: tuple[str, ...]
    analyses: Mapping[str, FamilyAnalysis]
    pooled: PooledAnalysis | None
    verdicts: Mapping[str, FamilyVerdict]
    tracking_uri: str | None
    tracking_errors: Mapping[str, str]
    dask_workers: tuple[str, ...]

    @classmethod
    def of(cls, work: Plan, measures: Sequence[MeasureOutcome], *, analyses: Mapping[str, FamilyAnalysis],
           pooled: PooledAnalysis | None, verdicts: Mapping[str, FamilyVerdict], tracking_uri: str | None,
           tracking_errors: Mapping[str, str]) -> MonitorSummary:
        """The summary of a run that planned ``work`` and measured ``measures``.

        Args:
            work: the run's plan.
            measures: one measure outcome per planned checkpoint, each carrying its embedding outcome.
            analyses: family -> its analysis, for the refreshed families.
            pooled: the pooled analysis, None when no family was refreshed.
            verdicts: family -> its verdict, for the refreshed families.
            tracking_uri: the MLflow tracking URI mirrored to, None when not mirrored.
            tracking_errors: family -> why its MLflow mirror failed.

        Returns:
            The :class:`MonitorSummary`.
        """
        return cls(
            checkpoints_new_or_stale=len(work.items),
            families=tuple(work.families),
            embedded=tuple(m.id for m in measures if m.embedded.status is Status.EMBEDDED),
            failed={m.id: m.error for m in measures if m.error is not None},
            known_failed=tuple(work.skipped_failed),
            analyses=dict(analyses),
            pooled=pooled,
            verdicts=dict(verdicts),
            tracking_uri=tracking_uri,
            tracking_errors=dict(tracking_errors),
            dask_workers=tuple(sorted({m.worker for m in measures if m.worker})),
        )

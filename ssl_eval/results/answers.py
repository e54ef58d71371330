"""The stored answers, typed: a family's analysis, the pooled analysis, a family's verdict.

Only the monitor flow writes them (``tasks/analyze.py``, ``tasks/verdict.py``); every
surface (``ssl-eval report``, the HTML page, the Prefect artifact, MLflow) reads them. Each
says what it was computed from: the analyses the digest of the checkpoint rows
(``inputs_digest``), the verdict that digest and :func:`answers_key`, the hash of the
configuration that decides the answers. An answer whose inputs changed since is stale
(:mod:`ssl_eval.analysis.currency`): the surfaces say so, the next monitor run recomputes it.

The models read every record written before them (``extra="allow"`` keeps the fields they
do not name; the statistics' nulls come back as NaN).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from ssl_eval.common import strict_json
from ssl_eval.config import Config
from ssl_eval.results.parts import Part, Record
from ssl_eval.results.records import RecordFiles

__all__ = ["SOURCE_KEY", "VERDICT_VERSION", "ConfigSource", "FamilyAnalysisRecord", "KeepAnswer", "PooledAnalysisRecord",
           "ProgressAnswer", "RunProgress", "SignalsAnswer", "StopAnswer", "TrustAnswer", "VerdictRecord", "answers_key",
           "note_config_source"]

#: Bumped when the verdict's fields or rules change (a stored verdict of another version is stale).
#: 3: ``inputs_digest`` and ``answers_key``: what the verdict was computed from.
#: 4: ``lenders_digest``: the other families' analyses a verdict without labels borrowed trust from.
VERDICT_VERSION = 4

#: The key of the work dir's own records (no family's: an escaped store name never starts with "_").
SOURCE_KEY = "_workdir"

#: Entries of a metric's statistics that name a checkpoint (None: there is none), not numbers.
_CHECKPOINT_ENTRIES = ("pick", "best")


def _statistics(table: Any) -> Any:
    """Every metric's statistics with null (undefined) back as NaN, checkpoint names kept."""
    if not isinstance(table, Mapping):
        return table
    return {name: strict_json.nan_for_null(entry, keep=_CHECKPOINT_ENTRIES) if isinstance(entry, Mapping) else entry
            for name, entry in table.items()}


def answers_key(config: Config, family: str) -> str:
    """Hash of the configuration that decides a family's answers: its metrics key (which holds the embedding key), ``[analysis]`` and ``[verdict]``.

    Args:
        config: the run's configuration.
        family: the family's id.

    Returns:
        16 hex digits.
    """
    payload = {"m": config.metrics_key(family), "a": config.analysis.model_dump(mode="json"),
               "v": config.verdict.model_dump(mode="json")}
    return hashlib.sha256(strict_json.encode(payload, sort_keys=True).encode()).hexdigest()[:16]


class FamilyAnalysisRecord(Record):
    """A family's analysis (``<family>/correlations``).

    Each label-free metric's statistics against the probe, the alerts, and what they were computed
    from and with.
    """

    family: str | None = None
    version: int = 0
    inputs_digest: str = ""
    n_checkpoints: int = 0
    n_with_probe: int = 0
    late_fraction: float = 0.5
    collapse_rule: dict[str, float] = {}
    alerts: dict[str, Any] = {}
    metrics: dict[str, dict[str, Any]] = {}

    @field_validator("metrics", mode="before")
    @classmethod
    def _undefined_is_nan(cls, value: Any) -> Any:
        """Statistics stored as null (undefined) read back as NaN."""
        return _statistics(value)

    def table(self) -> dict[str, Any]:
        """The analysis as the pure functions read it (``ssl_eval.verdict``, figures).

        Returns:
            Every field, NaN where a statistic is undefined.
        """
        return self.model_dump(mode="python")


class PooledAnalysisRecord(Record):
    """Every family's checkpoints analysed together (``_pooled/correlations``)."""

    version: int = 0
    inputs_digest: str = ""
    families: tuple[str, ...] = ()
    archs: tuple[str, ...] = ()
    n_checkpoints: int = 0
    late_fraction: float = 0.5
    raw: dict[str, dict[str, Any]] = {}
    within_family_rank: dict[str, dict[str, Any]] = {}

    @field_validator("raw", "within_family_rank", mode="before")
    @classmethod
    def _undefined_is_nan(cls, value: Any) -> Any:
        """Statistics stored as null (undefined) read back as NaN."""
        return _statistics(value)


class RunProgress(Record):
    """One run's progress: its state at its latest checkpoint, in words, with the trend tests read."""

    state: str = "insufficient"
    epoch: int | None = None
    text: str = ""
    trends: list[dict[str, Any]] = []


class ProgressAnswer(Record):
    """Is it still improving: the family's state, in words, and each run's."""

    state: str = "insufficient"
    text: str = ""
    window: int | None = None
    runs: dict[str, RunProgress] = {}


class SignalsAnswer(Record):
    """The label-free signals progress, keep and stop read, and why those."""

    names: list[str] = []
    source: str | None = None


class TrustAnswer(Record):
    """How far one label-free metric tracks the probe here (``class``: trusted, weak, misleading, unknown)."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    klass: str = Field("unknown", alias="class")
    reason: str = ""
    source: str | None = None


class KeepAnswer(Record):
    """Which checkpoint to keep, its probe (NaN or None without labels) and its regret against the best."""

    checkpoint: str | None = None
    run: str | None = None
    epoch: int | None = None
    probe: float | None = None
    best: str | None = None
    best_probe: float | None = None
    regret: float | None = None
    signals: list[str] = []
    text: str = ""


class StopAnswer(Record):
    """Where a run's label-free stop fired (``epoch`` None: not yet), and why."""

    epoch: int | None = None
    reason: str | None = None
    text: str = ""


class VerdictRecord(Record):
    """A family's verdict (``<family>/verdict``): its summary and four answers, and what it was computed from.

    :func:`ssl_eval.verdict.family_verdict` describes each entry.
    """

    version: int = 0
    family: str | None = None
    summary: str = ""
    progress: ProgressAnswer = ProgressAnswer()
    signals: SignalsAnswer = SignalsAnswer()
    trust: dict[str, TrustAnswer] = {}
    trust_source: str | None = None
    keep: KeepAnswer = KeepAnswer()
    stop: dict[str, StopAnswer] = {}
    retrospective: dict[str, dict[str, Any]] | None = None
    belief: dict[str, Any] = {}
    collapse: dict[str, str] = {}
    config: dict[str, Any] = {}
    inputs_digest: str | None = None  # the rows of the analysis it read (records before version 3: None)
    answers_key: str | None = None  # :func:`answers_key` of the configuration it ran with
    # a family that cannot judge trust itself borrows it: what it read of the others (None: it did not borrow)
    lenders_digest: str | None = None

    @property
    def state(self) -> str:
        """The family's progress state (``improving``, ``plateaued``, ...)."""
        return self.progress.state

    @property
    def trusted(self) -> list[str]:
        """The metrics trusted here, in the verdict's order."""
        return [name for name, t in self.trust.items() if t.klass == "trusted"]

    def answers(self) -> dict[str, Any]:
        """The verdict as its JSON readers take it (the report document).

        Returns:
            Every field as stored, but what it was computed from.
        """
        return self.model_dump(mode="python", exclude={"inputs_digest", "answers_key"}, exclude_unset=True, by_alias=True)


class ConfigSource(Record):
    """Where the last monitor run resolved its configuration.

    The store (whose ``ssl_eval.toml`` it read), the operator's file and overrides, and the modules
    allowed. ``ssl-eval report`` resolves the configuration again from them to tell whether it
    changed.
    """

    store: str
    config_file: str | None = None
    overrides: dict[str, Any] = {}
    allow_modules: tuple[str, ...] = ()


def note_config_source(records: RecordFiles, *, store: str, config_file: str | None, overrides: Mapping[str, Any],
                       allow_modules: Sequence[str]) -> None:
    """Note where this run resolved its configuration (the monitor flow, once per run).

    Args:
        records: the work dir's record store.
        store: the checkpoint store (its ``ssl_eval.toml``).
        config_file: the operator's file, or None.
        overrides: the dotted overrides.
        allow_modules: the modules the operator allowed.
    """
    note = ConfigSource(store=store, config_file=config_file, overrides=dict(overrides), allow_modules=tuple(allow_modules))
    if records.read(SOURCE_KEY, Part.SOURCE, ConfigSource) != note:
        records.write(SOURCE_KEY, Part.SOURCE, note)

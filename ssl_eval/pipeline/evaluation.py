"""Metric and probe computations over stored embeddings, recorded beside the arrays.

Each call reads one checkpoint's arrays from the embedding store once, computes the asked
record parts (metric groups, probes), and writes a record per part keyed by the
checkpoint's fingerprint and the metric configuration. A record that is already current is returned as is: a rerun
computes nothing, and a changed metric configuration recomputes from the stored arrays.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ssl_eval.common.errors import InfrastructureError, is_transient
from ssl_eval.common.urls import redact_text
from ssl_eval.config import Config
from ssl_eval.metrics import GROUPS, METRICS, MetricOptions, compute_group, unconditional_metrics
from ssl_eval.pipeline.outcomes import EmbedOutcome, MeasureOutcome, PartOutcome, Status
from ssl_eval.probe import knn_probe, linear_probe
from ssl_eval.results.parts import FailureRecord, MeasuredRecord, MetricsRecord, Part, ProbeRecord, group_of, measured_model, metrics_part
from ssl_eval.results.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np


def metric_options(config: Config) -> MetricOptions:
    """The metric options of the configuration's ``[metrics]`` section.

    ``[metrics]`` is MetricOptions plus ``random_state`` (``ssl_eval/metrics/options.py``).

    Args:
        config: the run's configuration.

    Returns:
        The :class:`~ssl_eval.metrics.MetricOptions`.
    """
    return config.metrics.options()


class _StoredCheckpoint:
    """One checkpoint's committed arrays and provenance, each read from the store at most once however many record parts are computed from them."""

    def __init__(self, workspace: Workspace, checkpoint_id: str) -> None:
        self.id, self.store = checkpoint_id, workspace.embeddings
        provenance = self.store.provenance(checkpoint_id)
        if provenance is None:
            raise FileNotFoundError(f"{checkpoint_id}: no committed embeddings; embed the checkpoint first.")
        self.provenance: dict[str, Any] = provenance
        self._arrays: dict[str, np.ndarray | None] = {}

    def get(self, name: str) -> np.ndarray | None:
        """The array ``name``, or None when the checkpoint has none (e.g. no labels)."""
        if name not in self._arrays:
            self._arrays[name] = self.store.read_optional(self.id, name)
        return self._arrays[name]


def record_is_current(record: MeasuredRecord | None, part: str, *, fingerprint: str, metrics_key: str) -> bool:
    """Whether a stored record of ``part`` still answers for the checkpoint and configuration.

    It must carry the checkpoint's fingerprint and the metrics key, and a ``metrics-<group>``
    record must hold every metric the registry now computes for that group unconditionally
    (a record written before a metric joined the registry is recomputed, not left without it).

    Args:
        record: the stored record, or None.
        part: ``metrics-<group>`` or ``probe``.
        fingerprint: the checkpoint's fingerprint now.
        metrics_key: the family's metrics key now.

    Returns:
        True when the record can be used as it is.
    """
    if record is None or not record.is_for(fingerprint, metrics_key):
        return False
    group = group_of(part)
    return group not in GROUPS or set(unconditional_metrics(group)) <= set(record.values)


def group_record(group: str, X: Any, *, labels: Any, views: tuple[Any, Any] | None, num_classes: int | None,
                 config: Config) -> MetricsRecord:
    """One metric group over one checkpoint's arrays, as its record stores it.

    Args:
        group: a metric group of :data:`ssl_eval.metrics.GROUPS`.
        X: the evaluation embeddings (N, D).
        labels: their labels, or None.
        views: the two views' embeddings, or None (read only by groups with view-based metrics).
        num_classes: the data set's class count: k for k-means when ``[metrics] k`` is unset.
        config: the run's configuration (``[metrics]``).

    Returns:
        Its ``values``, ``flags`` and, where the group gives them, ``details`` (not yet stamped).
    """
    options = metric_options(config)
    if options.k is None and num_classes:
        options = options.model_copy(update={"k": int(num_classes)})
    if not any(spec.group == group and spec.needs_views for spec in METRICS.values()):
        views = None
    result = compute_group(group, X, labels=labels, views=views, options=options, random_state=config.metrics.random_state)
    if result.details:
        return MetricsRecord(values=result.values, flags=tuple(result.flags), details=dict(result.details))
    return MetricsRecord(values=result.values, flags=tuple(result.flags))


def probe_record(train_X: Any, train_y: Any, test_X: Any, test_y: Any, config: Config) -> ProbeRecord:
    """The linear and kNN probes over one checkpoint's arrays, as the ``probe`` record stores them.

    Args:
        train_X: probe-train embeddings.
        train_y: their labels, or None (no labels: no probe).
        test_X: probe-test embeddings.
        test_y: their labels, or None.
        config: the run's configuration (``[probe]``).

    Returns:
        Its ``values``: ``linear_acc`` and ``knn_acc``, empty without labels (not yet stamped).
    """
    if train_y is None or test_y is None:  # recorded too, so a rerun does not try again
        return ProbeRecord(values={})
    return ProbeRecord(values={
        "linear_acc": linear_probe(
            train_X, train_y, test_X, test_y, random_state=config.probe.random_state, max_iter=config.probe.max_iter,
            solver=config.probe.solver,
        ),
        "knn_acc": knn_probe(train_X, train_y, test_X, test_y, k=config.probe.knn_k),
    })


def _metric_group(ckpt: _StoredCheckpoint, group: str, config: Config) -> MetricsRecord:
    views = None  # only the groups with view-based metrics (alignment, LiDAR) read the views
    if any(spec.group == group and spec.needs_views for spec in METRICS.values()):
        views_a, views_b = ckpt.get("views_a"), ckpt.get("views_b")
        views = (views_a, views_b) if views_a is not None and views_b is not None else None
    return group_record(group, ckpt.get("eval"), labels=ckpt.get("eval_labels"), views=views,
                        num_classes=ckpt.provenance.get("num_classes"), config=config)


def _probes(ckpt: _StoredCheckpoint, config: Config) -> ProbeRecord:
    train_y, test_y = ckpt.get("probe_train_labels"), ckpt.get("probe_test_labels")
    if train_y is None or test_y is None:
        return ProbeRecord(values={})
    return probe_record(ckpt.get("probe_train"), train_y, ckpt.get("probe_test"), test_y, config)


def _outcome(checkpoint_id: str, part: str, status: Status, record: MeasuredRecord) -> PartOutcome:
    if part == Part.PROBE and not record.values:
        status = Status.NO_LABELS
    return PartOutcome(checkpoint_id, part, status, values=dict(record.values),
                       flags=record.flags if isinstance(record, MetricsRecord) else (),
                       seconds=record.seconds if status is Status.COMPUTED else None)


def compute_parts(workspace: Workspace, checkpoint_id: str, parts: list[str], config: Config) -> dict[str, PartOutcome]:
    """Compute (or return the current record of) each of ``parts`` for one checkpoint, reading its arrays once.

    Each part is computed under its own lock and recorded with the checkpoint's fingerprint
    and metric key.

    Args:
        workspace: the work dir (embedding and record stores, locks).
        checkpoint_id: the checkpoint's id.
        parts: record parts, each ``metrics-<group>`` or ``probe``.
        config: the run's configuration (metric and probe options).

    Returns:
        part -> its :class:`PartOutcome`: COMPUTED, CACHED (the record was current) or
        NO_LABELS (a probe without labels).

    Raises:
        ValueError: a part is neither ``probe`` nor ``metrics-<group>`` of a known group.
        FileNotFoundError: the checkpoint has no committed embeddings.
    """
    for part in parts:
        if part != Part.PROBE and group_of(part) not in GROUPS:
            raise ValueError(f"unknown record part {part!r}; expected 'probe' or one of {[metrics_part(g) for g in GROUPS]}.")
    ckpt = _StoredCheckpoint(workspace, checkpoint_id)
    stamp = {"fingerprint": ckpt.provenance["fingerprint"], "metrics_key": config.metrics_key(checkpoint_id.split("/")[0])}
    out = {}
    for part in parts:
        with workspace.lock(f"{checkpoint_id}/{part}"):
            record = workspace.records.read(checkpoint_id, part, measured_model(part))
            if record is not None and record_is_current(record, part, **stamp):
                out[part] = _outcome(checkpoint_id, part, Status.CACHED, record)
                continue
            started = time.perf_counter()
            result = _probes(ckpt, config) if part == Part.PROBE else _metric_group(ckpt, str(group_of(part)), config)
            record = result.model_copy(update={**stamp, "seconds": round(time.perf_counter() - started, 3)})
            workspace.records.write(checkpoint_id, part, record)
            out[part] = _outcome(checkpoint_id, part, Status.COMPUTED, record)
    return out


def compute_parts_or_record_failure(
    workspace: Workspace, checkpoint_id: str, parts: list[str], config: Config
) -> dict[str, PartOutcome]:
    """Like :func:`compute_parts`, but whatever goes wrong with one checkpoint's stored embeddings becomes its recorded failure.

    Any exception but an infrastructure failure is recorded with its type and message, and
    every part is FAILED with it; the other checkpoints go on. The failure is retried on the
    next scan.

    Args:
        workspace: the work dir (embedding and record stores, locks).
        checkpoint_id: the checkpoint's id.
        parts: record parts, each ``metrics-<group>`` or ``probe``.
        config: the run's configuration.

    Returns:
        part -> its :class:`PartOutcome`.

    Raises:
        InfrastructureError: the work dir failed, no checkpoint's fault.
    """
    try:
        out = compute_parts(workspace, checkpoint_id, parts, config)
    except InfrastructureError:
        raise
    except Exception as exc:  # noqa: BLE001 - one checkpoint's fault, never the run's
        prov = workspace.embeddings.provenance(checkpoint_id) or {}
        error = redact_text(f"{prov.get('source', checkpoint_id)}: measuring failed: {type(exc).__name__}: {exc}")
        workspace.records.write(checkpoint_id, Part.FAILURE, FailureRecord(
            fingerprint=prov.get("fingerprint"), embedding_key=prov.get("embedding_key"), error=error,
            metrics_key=config.metrics_key(checkpoint_id.split("/", 1)[0]),
            type=type(exc).__name__, stage="measure", path=prov.get("source"), time=time.time(),
            # the same arrays measured the same way fail the same way: retried once the file or the
            # metrics configuration changes; I/O, memory and device errors on the next scan
            permanent=not is_transient(exc),
        ))
        return {part: PartOutcome(checkpoint_id, part, Status.FAILED, error=error) for part in parts}
    failure = workspace.records.read(checkpoint_id, Part.FAILURE, FailureRecord)
    if failure is not None and failure.stage == "measure":  # measured now: an earlier measuring failure is over
        workspace.records.delete(checkpoint_id, Part.FAILURE)
    return out


def measure_embedded(workspace: Workspace, embedded: EmbedOutcome, parts: list[str], config: Config) -> MeasureOutcome:
    """The pending record ``parts`` of one checkpoint after its embedding step.

    Every part is SKIPPED when ``embedded`` is not ready, else computed by
    :func:`compute_parts_or_record_failure` and summed up (the measuring error, the union of
    the metric groups' flags).

    Args:
        workspace: the work dir.
        embedded: the checkpoint's embedding outcome.
        parts: the record parts to compute.
        config: the run's configuration.

    Returns:
        The checkpoint's :class:`MeasureOutcome`.

    Raises:
        InfrastructureError: the work dir failed, no checkpoint's fault.
    """
    if not embedded.ready:
        return MeasureOutcome(embedded, {part: Status.SKIPPED for part in parts}, error=embedded.error)
    results = compute_parts_or_record_failure(workspace, embedded.id, parts, config)
    error = next((r.error for r in results.values() if r.error is not None), None)
    flags = () if error else tuple(sorted({flag for r in results.values() for flag in r.flags}))
    return MeasureOutcome(embedded, {part: r.status for part, r in results.items()}, flags=flags, error=error)


def compute_part(workspace: Workspace, checkpoint_id: str, part: str, config: Config) -> PartOutcome:
    """Compute one record part (or return its current record).

    Args:
        workspace: the work dir (embedding and record stores, locks).
        checkpoint_id: the checkpoint's id.
        part: ``metrics-<group>`` or ``probe``.
        config: the run's configuration.

    Returns:
        Its :class:`PartOutcome`.

    Raises:
        ValueError: an unknown part.
        FileNotFoundError: the checkpoint has no committed embeddings.
    """
    return compute_parts(workspace, checkpoint_id, [part], config)[part]


def compute_metric_group(workspace: Workspace, checkpoint_id: str, group: str, config: Config) -> PartOutcome:
    """Compute one metric group for one checkpoint and record it (or return the current record).

    Args:
        workspace: the work dir (embedding and record stores, locks).
        checkpoint_id: the checkpoint's id.
        group: a metric group (:data:`ssl_eval.metrics.GROUPS`).
        config: the run's configuration.

    Returns:
        The :class:`PartOutcome` of part ``metrics-<group>``.

    Raises:
        ValueError: an unknown group.
        FileNotFoundError: the checkpoint has no committed embeddings.
    """
    return compute_part(workspace, checkpoint_id, metrics_part(group), config)

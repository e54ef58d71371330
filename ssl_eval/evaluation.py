"""Metric and probe computations over stored embeddings, recorded beside the arrays.

Each call reads one checkpoint's arrays from the embedding store, computes one metric
group (or the probes), and writes a record keyed by the checkpoint's fingerprint and the
metric configuration. A record that is already current is returned as is: a rerun
computes nothing, and a changed metric configuration recomputes from the stored arrays.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ssl_eval.config import Config
from ssl_eval.metrics import METRICS, MetricOptions, compute_group
from ssl_eval.probe import knn_probe, linear_probe
from ssl_eval.workspace import Workspace


def metric_options(config: Config) -> MetricOptions:
    m = config.metrics
    return MetricOptions(
        k=m.k,
        reduce=m.reduce,
        pca_dims=m.pca_dims,
        silhouette_sample_size=m.silhouette_sample_size,
        entropy_knn_k=m.entropy_knn_k,
    )


def _current(workspace: Workspace, checkpoint_id: str, part: str, config: Config) -> tuple[dict | None, dict]:
    prov = workspace.embeddings.provenance(checkpoint_id)
    if prov is None:
        raise FileNotFoundError(f"{checkpoint_id}: no committed embeddings; embed the checkpoint first.")
    stamp = {"fingerprint": prov["fingerprint"], "metrics_key": config.metrics_key(checkpoint_id.split("/")[0])}
    record = workspace.records.get(checkpoint_id, part)
    if record and all(record.get(k) == v for k, v in stamp.items()):
        return record, stamp
    return None, stamp


def compute_metric_group(workspace: Workspace, checkpoint_id: str, group: str, config: Config) -> dict[str, Any]:
    """Compute one metric group for one checkpoint and record it (or return the record)."""
    with workspace.lock(f"{checkpoint_id}/metrics-{group}"):
        return _compute_metric_group(workspace, checkpoint_id, group, config)


def _compute_metric_group(workspace: Workspace, checkpoint_id: str, group: str, config: Config) -> dict[str, Any]:
    part = f"metrics-{group}"
    record, stamp = _current(workspace, checkpoint_id, part, config)
    if record is not None:
        return {"id": checkpoint_id, "group": group, "status": "cached", "flags": record["flags"]}
    started = time.perf_counter()
    store = workspace.embeddings
    X = store.read(checkpoint_id, "eval")
    labels = store.read_optional(checkpoint_id, "eval_labels")
    options = metric_options(config)
    if options.k is None:
        num_classes = store.provenance(checkpoint_id).get("num_classes")
        if num_classes:
            options = dataclasses.replace(options, k=int(num_classes))
    views = None  # only the groups with view-based metrics (alignment, LiDAR) read the views
    if any(spec.group == group and spec.needs_views for spec in METRICS.values()):
        views_a = store.read_optional(checkpoint_id, "views_a")
        views_b = store.read_optional(checkpoint_id, "views_b")
        views = (views_a, views_b) if views_a is not None and views_b is not None else None
    result = compute_group(group, X, labels=labels, views=views, options=options, random_state=config.metrics.seed)
    seconds = round(time.perf_counter() - started, 3)
    workspace.records.put(
        checkpoint_id, part, {**stamp, "values": result.values, "flags": list(result.flags), "seconds": seconds}
    )
    return {"id": checkpoint_id, "group": group, "status": "computed", "flags": list(result.flags), "seconds": seconds}


def compute_probes(workspace: Workspace, checkpoint_id: str, config: Config) -> dict[str, Any]:
    """Linear and kNN probe accuracy (probe_train -> probe_test), where labels exist."""
    with workspace.lock(f"{checkpoint_id}/probe"):
        return _compute_probes(workspace, checkpoint_id, config)


def _compute_probes(workspace: Workspace, checkpoint_id: str, config: Config) -> dict[str, Any]:
    record, stamp = _current(workspace, checkpoint_id, "probe", config)
    if record is not None:
        return {"id": checkpoint_id, "status": "cached", **record["values"]}
    store = workspace.embeddings
    train_y = store.read_optional(checkpoint_id, "probe_train_labels")
    test_y = store.read_optional(checkpoint_id, "probe_test_labels")
    if train_y is None or test_y is None:  # recorded too, so a rerun does not try again
        workspace.records.put(checkpoint_id, "probe", {**stamp, "values": {}, "seconds": 0.0})
        return {"id": checkpoint_id, "status": "no_labels"}
    started = time.perf_counter()
    train_X, test_X = store.read(checkpoint_id, "probe_train"), store.read(checkpoint_id, "probe_test")
    values = {
        "linear_acc": linear_probe(
            train_X, train_y, test_X, test_y, random_state=config.probe.seed, max_iter=config.probe.max_iter
        ),
        "knn_acc": knn_probe(train_X, train_y, test_X, test_y, k=config.probe.knn_k),
    }
    seconds = round(time.perf_counter() - started, 3)
    workspace.records.put(checkpoint_id, "probe", {**stamp, "values": values, "seconds": seconds})
    return {"id": checkpoint_id, "status": "computed", **values}


def compute_part(workspace: Workspace, checkpoint_id: str, part: str, config: Config) -> dict[str, Any]:
    """Compute one record part: ``metrics-<group>`` or ``probe``."""
    if part == "probe":
        return compute_probes(workspace, checkpoint_id, config)
    if part.startswith("metrics-"):
        return compute_metric_group(workspace, checkpoint_id, part.removeprefix("metrics-"), config)
    raise ValueError(f"unknown record part {part!r}; expected 'probe' or 'metrics-<group>'.")

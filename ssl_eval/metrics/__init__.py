"""Label-free metrics of SSL embeddings, driven by one registry (see registry.py)."""

from ssl_eval.metrics.registry import (
    GROUPS,
    METRICS,
    MetricOptions,
    MetricResult,
    MetricSpec,
    compute_group,
    label_free_metrics,
)

__all__ = [
    "GROUPS",
    "METRICS",
    "MetricOptions",
    "MetricResult",
    "MetricSpec",
    "compute_group",
    "label_free_metrics",
]

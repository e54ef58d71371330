"""Label-free metrics of SSL embeddings, driven by one registry (see registry.py)."""

from ssl_eval.metrics import registry
from ssl_eval.metrics.registry import (  # noqa: F401  (the public names, listed once in registry.__all__)
    GROUPS,
    METRICS,
    MetricOptions,
    MetricResult,
    MetricSpec,
    compute_group,
    label_free_metrics,
)

__all__ = registry.__all__

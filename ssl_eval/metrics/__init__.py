"""Label-free metrics of SSL embeddings, driven by one registry (see registry.py).

From a notebook: ``compute_all(X, labels=None, views=None)`` for every metric, or one
metric by its registry name (``rankme(X)``, ``silhouette(X)``); see notebook.py.

Layer: arrays in, numbers out; imports only ``ssl_eval.common``.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from ssl_eval.metrics import notebook
from ssl_eval.metrics.notebook import *  # noqa: F403  (compute_all and one function per metric)
from ssl_eval.metrics.registry import (
    GROUPS,
    METRICS,
    MetricOptions,
    MetricResult,
    MetricSpec,
    compute_group,
    label_free_metrics,
    unconditional_metrics,
)

# registry.__all__, written out so that a type checker sees the re-exports
__all__ = ["GROUPS", "METRICS", "MetricOptions", "MetricResult", "MetricSpec", "compute_group", "label_free_metrics",
           "unconditional_metrics"]
__all__ += notebook.__all__  # compute_all, metric_function and one function per metric

if TYPE_CHECKING:

    def __getattr__(name: str) -> Callable[..., float]:
        """One function per registry metric (``rankme``, ``silhouette``, ...), made at import by notebook.py."""


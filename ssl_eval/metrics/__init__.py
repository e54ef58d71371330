"""Label-free metrics of SSL embeddings, driven by one registry (see registry.py).

From a notebook: ``compute_all(X, labels=None, views=None)`` for every metric, or one
metric by its registry name (``rankme(X)``, ``silhouette(X)``); see notebook.py.

Layer: arrays in, numbers out; imports only ``ssl_eval.common``.
"""

from ssl_eval.metrics import notebook, registry
from ssl_eval.metrics.notebook import *  # noqa: F403  (compute_all and one function per metric)
from ssl_eval.metrics.registry import (  # noqa: F401  (the public names, listed once in registry.__all__)
    GROUPS,
    METRICS,
    MetricOptions,
    MetricResult,
    MetricSpec,
    compute_group,
    label_free_metrics,
    unconditional_metrics,
)

__all__ = registry.__all__ + notebook.__all__

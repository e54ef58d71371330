"""One-call entry points for notebooks: every metric at once, or one metric by name.

``compute_all(X)`` runs each metric group once (k-means once for the clustering metrics)
and returns every registry metric that applies to what is given; ``rankme(X)``,
``silhouette(X)``, ... return one metric as a Python float. Both go through
:func:`~ssl_eval.metrics.registry.compute_group`, so the validation, the edge-case flags
and the defaults are those of the monitor itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ssl_eval.metrics.registry import GROUPS, METRICS, MetricOptions, MetricResult, compute_group

Views = tuple[np.ndarray, np.ndarray]


def compute_all(X: np.ndarray, labels: np.ndarray | None = None, views: Views | None = None, *,
                options: MetricOptions | None = None, random_state: int = 0) -> MetricResult:
    """Every registry metric that applies to what is given.

    Label metrics only with ``labels``, view metrics (alignment, LiDAR) only with ``views=(V1, V2)``.

    Args:
        X: (N, D) real array of embeddings.
        labels: (N,) class labels, or None.
        views: (V1, V2), two (n, D) arrays of augmented-view embeddings, or None.
        options: metric options; None uses the defaults.
        random_state: seed of every random step (k-means, subsamples, UMAP).

    Returns:
        A :class:`MetricResult`: values in registry order, NaN where undefined; its ``flags``
        say why (``collapsed``, ``non_finite``, ...).

    Raises:
        TypeError: X, labels or views are not real numeric arrays (the registry's checker).
        ValueError: their shapes do not fit together (the registry's checker).
    """
    options = MetricOptions() if options is None else options
    values: dict[str, float] = {}
    flags: list[str] = []
    details: dict[str, str] = {}
    for group in GROUPS:
        result = compute_group(group, X, labels=labels, views=views, options=options, random_state=random_state)
        values.update(result.values)
        flags += [f for f in result.flags if f not in flags]
        details.update(result.details)
    return MetricResult({name: values[name] for name in METRICS if name in values}, tuple(flags), details)


def metric_function(name: str) -> Callable[..., float]:
    """The function that computes registry metric ``name`` alone.

    Args:
        name: a registry metric (a key of :data:`METRICS`).

    Returns:
        ``f(X, labels=None, views=None, *, options=None, random_state=0) -> float``, which raises
        ValueError when the metric needs labels or views that were not given.

    Raises:
        ValueError: ``name`` is not a registry metric.
    """
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose one of {list(METRICS)}.")
    spec = METRICS[name]

    def compute(X: np.ndarray, labels: np.ndarray | None = None, views: Views | None = None, *,
                options: MetricOptions | None = None, random_state: int = 0) -> float:
        if spec.needs_labels and labels is None:
            raise ValueError(f"{name} needs labels: call {name}(X, labels=y) with one class per row of X.")
        if spec.needs_views and views is None:
            raise ValueError(f"{name} needs augmented views: call {name}(X, views=(V1, V2)), "
                             "row i of V1 and V2 embedding two augmentations of one image.")
        result = compute_group(spec.group, X, labels=labels, views=views,
                               options=MetricOptions() if options is None else options, random_state=random_state)
        return result.values[name]

    compute.__name__ = compute.__qualname__ = name
    compute.__doc__ = (f"{name} ({'higher' if spec.higher_is_better else 'lower'} is better): {spec.definition}.\n\n"
                       f"Reference: {spec.reference}. NaN where undefined (see compute_all's flags).")
    return compute


for _name in METRICS:
    globals()[_name] = metric_function(_name)

__all__: list[str] = ["compute_all", "metric_function", *METRICS]

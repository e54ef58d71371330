"""Label-free metrics of SSL embeddings, driven by one registry (see registry.py).

From a notebook: ``compute_all(X, labels=None, views=None)`` for every metric, or one
metric by its registry name (``rankme(X)``, ``silhouette(X)``); see notebook.py.

Layer: arrays in, numbers out; imports only ``ssl_eval.common``.
"""

from __future__ import annotations

import importlib.util  # binds importlib too (import_module)
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

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
    __all__: list[str] = ["GROUPS", "METRICS", "MetricOptions", "MetricResult", "MetricSpec", "compute_group", "label_free_metrics",
               "unconditional_metrics"]
    __all__ += notebook.__all__  # compute_all, metric_function and one function per metric

    def __getattr__(name: str) -> Callable[..., float]:
        """One function per registry metric (``rankme``, ``silhouette``, ...), made at import by notebook.py."""

else:

    def __getattr__(name: str) -> Any:
        """The registry's and the notebook's names, imported on first use (PEP 562).

        The package's own modules are imported without them: the configuration reads
        ``ssl_eval.metrics.options`` before ``ssl-eval evaluate`` launches its Prefect server, and
        the registry's imports (scikit-learn, scipy: about a second) would delay that launch.

        Returns:
            The registry's or the notebook's object of that name (``__all__``: their names).

        Raises:
            AttributeError: no such name; for a submodule, so that the import system loads it.
        """
        names = globals()
        if (name.startswith("__") and name != "__all__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
            # a submodule (``from ssl_eval.metrics import geometry``): the import system loads it
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        if "__all__" not in names:
            registry = importlib.import_module(f"{__name__}.registry")  # the import lock serialises threads
            notebook = importlib.import_module(f"{__name__}.notebook")
            exported = {n: getattr(registry, n) for n in registry.__all__} | {n: getattr(notebook, n) for n in notebook.__all__}
            names.update(exported)
            names["__all__"] = list(exported)
        if name in names:
            return names[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

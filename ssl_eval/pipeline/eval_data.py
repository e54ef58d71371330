"""The evaluation data every checkpoint is embedded on: the splits and the fixed augmented views.

They are loaded once per process (the same for every checkpoint); a data set that cannot be
read is the data set's fault (:class:`~ssl_eval.common.errors.DataSetError`), reported once.
"""

from __future__ import annotations

import functools

import numpy as np

from ssl_eval.common.errors import DataSetError, InfrastructureError
from ssl_eval.common.urls import redact_text
from ssl_eval.config import DataConfig
from ssl_eval.sources.data_files import DEFAULT_DATA_BYTES, Bounds
from ssl_eval.sources.splits import EvalSplits, eval_splits

__all__ = ["cached_splits", "cached_views", "data_splits"]


@functools.lru_cache(maxsize=4)
def cached_splits(data: DataConfig, max_bytes: int = DEFAULT_DATA_BYTES) -> EvalSplits:
    """The evaluation splits of ``data``, loaded once per process (the same for every checkpoint).

    Args:
        data: the data configuration (hashable: the cache key).
        max_bytes: what one data file may decode to (``config.limits.data_bytes``).

    Returns:
        The :class:`~ssl_eval.sources.splits.EvalSplits`.

    Raises:
        ValueError: an unknown or malformed data set.
        FileNotFoundError: its files are missing.
    """
    return eval_splits(
        data.name,
        n_eval=data.n_eval,
        n_probe_train=data.n_probe_train,
        n_probe_test=data.n_probe_test,
        random_state=data.random_state,
        root=data.root,
        image_size=data.image_size,
        bounds=Bounds(data.confined_to, max_bytes),
    )


def data_splits(data: DataConfig, max_bytes: int = DEFAULT_DATA_BYTES) -> EvalSplits:
    """The evaluation splits; a data set that cannot be read is the data set's fault, reported once.

    It is never recorded against each checkpoint.

    Args:
        data: the data configuration (hashable: the cache key).
        max_bytes: what one data file may decode to.

    Returns:
        The :class:`~ssl_eval.sources.splits.EvalSplits`.

    Raises:
        DataSetError: the data set cannot be read (naming it and why).
        InfrastructureError: passed on unchanged: a fault of the machine, not of the data set.
    """
    try:
        return cached_splits(data, max_bytes)
    except InfrastructureError:
        raise
    except Exception as exc:
        raise DataSetError(f"evaluation data set {data.name!r} cannot be read: {redact_text(str(exc))}") from exc


@functools.lru_cache(maxsize=4)
def cached_views(data: DataConfig, max_bytes: int = DEFAULT_DATA_BYTES) -> tuple[np.ndarray, np.ndarray] | None:
    """Two augmented views (uint8) of the first ``data.n_views`` eval images, drawn from ``data.random_state``.

    The same images and the same random maps serve every checkpoint.

    Args:
        data: the data configuration (hashable: the cache key).
        max_bytes: what one data file may decode to.

    Returns:
        (view1, view2) uint8 arrays, or None when ``data.n_views`` is 0.

    Raises:
        DataSetError: the data set cannot be read.
    """
    if data.n_views == 0:
        return None
    from ssl_eval.sources.augment import fixed_views  # torch: not needed to check the data set before the server starts

    return fixed_views(data_splits(data, max_bytes).eval.images, data.n_views, random_state=data.random_state)

"""The one input checker of the core: embedding matrices and their labels.

Every public function that takes embeddings (the metric registry, the silhouette, the
entropy estimators, the probes) checks them here, so one kind of bad input gets one
message wherever it is passed: the message names the argument, says what was expected and
what came, and how to fix it. The conversion itself is scikit-learn's
:func:`sklearn.utils.check_array` (float32 kept, integers to float64, no copy when none is
needed); the checks before it exist for the messages, which scikit-learn words for its own
estimators (and prints whole arrays into).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.utils import check_array

__all__ = ["FLOAT_DTYPES", "check_labels", "check_matrix"]

#: float32 and float64 are kept as they are; any other real dtype becomes float64.
FLOAT_DTYPES: tuple[type, ...] = (np.float64, np.float32)


def check_matrix(value: Any, *, name: str = "X", min_rows: int = 1, rows_reason: str = "", allow_non_finite: bool = False,
                 non_finite_fix: str = "drop or fix the non-finite rows first", dtype: Any = FLOAT_DTYPES) -> np.ndarray:
    """``value`` as a 2-D float array of at least ``min_rows`` rows and one column.

    Args:
        value: array-like (N, D) of real numbers.
        name: the argument's name, as the caller's user wrote it (``X``, ``train_X``, ``views[0]``).
        min_rows: the fewest rows the caller can work with.
        rows_reason: why that many rows, said after the count (``"more than k=3 rows"``).
        allow_non_finite: keep NaN and inf (the caller flags them); else they raise.
        non_finite_fix: what to do about NaN or inf, said in that error.
        dtype: the dtype, or a tuple of dtypes to keep (others become the first).

    Returns:
        The checked array (``value`` itself when it already was one of ``dtype``).

    Raises:
        TypeError: a sparse matrix, or not a real numeric array (strings, objects, complex).
        ValueError: not 2-D, fewer than ``min_rows`` rows or no column, or NaN / inf when not allowed.
    """
    if sparse.issparse(value):
        raise TypeError(f"{name} is a sparse matrix; pass a dense array instead, e.g. {name}.toarray().")
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}; "
                        f"convert it with np.asarray({name}, dtype=np.float32).")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}; "
                         f"reshape it, e.g. {name}.reshape(len({name}), -1).")
    if array.shape[0] < min_rows or array.shape[1] < 1:
        rows = "one row" if min_rows == 1 else f"{min_rows} rows"
        reason = f" ({rows_reason})" if rows_reason else ""
        raise ValueError(f"{name} must have at least {rows} and one column{reason}, got shape {array.shape}; "
                         "embed more samples.")
    if not allow_non_finite and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{name} contains NaN or inf ({bad} of {array.size} entries); {non_finite_fix}.")
    return check_array(array, dtype=dtype, ensure_all_finite=not allow_non_finite, ensure_min_samples=min_rows,
                       input_name=name, copy=False)


def check_labels(value: Any, *, n_rows: int, name: str = "labels", rows_of: str = "X") -> np.ndarray:
    """``value`` as a 1-D array with one label per row of the matrix it goes with.

    Args:
        value: array-like (N,) of labels (class or cluster ids, any hashable dtype).
        n_rows: the rows of that matrix.
        name: the argument's name (``labels``, ``train_y``).
        rows_of: the matrix's name, for the message.

    Returns:
        The labels as a numpy array.

    Raises:
        ValueError: not 1-D, or not one label per row.
    """
    labels = np.asarray(value)
    if labels.ndim != 1 or labels.shape[0] != n_rows:
        raise ValueError(f"{name} must be 1-D with one label per row of {rows_of} ({n_rows}), got shape {labels.shape}; "
                         f"pass one label per sample, in the order of the rows of {rows_of}.")
    return labels

"""Strict JSON: the one rule for non-finite floats in everything ssl-eval writes as JSON.

The rule:

* **On write**, NaN, inf and -inf become ``null`` and the text is produced with
  ``allow_nan=False`` (:func:`encode`). Standard JSON has no token for them; Python's bare
  ``NaN`` is rejected by strict parsers (JavaScript's ``JSON.parse``, jq, Go, Rust's serde).
  In a record or report ``null`` where a number belongs means "undefined for this
  checkpoint" (a correlation of a constant series, a metric of a collapsed embedding).
* **On read**, a reader that needs a float turns ``null`` back into NaN
  (:func:`float_or_nan`, :func:`nan_for_null`); undefined stays undefined. The sign of an
  infinity is not kept: every non-finite value comes back as NaN.
* **Older files** written before this rule may hold bare ``NaN`` / ``Infinity``:
  :func:`decode` still reads them (as float NaN / inf), so a work dir survives an upgrade.

``ssl-eval report --format json`` (schema 3 and later) follows the same rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["strict", "encode", "decode", "float_or_nan", "nan_for_null"]


def strict(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON null), recursively.

    Args:
        value: a JSON-like value (dicts, lists, tuples, floats, numpy scalars and arrays, ...).

    Returns:
        The same structure with dict keys as strings, tuples and arrays as lists, numpy
        scalars as Python values; any other value unchanged.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict(value.tolist())
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return strict(value.item())
    return value


def encode(value: Any, *, default: Callable[[Any], Any] | None = None, **kwargs: Any) -> str:
    """``value`` as strict JSON: non-finite floats as null, never ``NaN`` or ``Infinity``.

    Args:
        value: the document (see :func:`strict` for what it may hold).
        default: ``json.dumps``' hook for types :func:`strict` leaves alone (e.g. to name them
            in a TypeError, or ``str`` for a digest).
        **kwargs: other ``json.dumps`` options (``indent``, ``sort_keys``).

    Returns:
        The JSON text.
    """
    return json.dumps(strict(value), allow_nan=False, default=default, **kwargs)


def decode(text: str | bytes) -> Any:
    """A JSON document written by :func:`encode`, or by an older version with bare NaN/Infinity.

    Args:
        text: the JSON text.

    Returns:
        The value; ``null`` stays None (see :func:`float_or_nan`), a bare ``NaN`` reads as NaN.

    Raises:
        json.JSONDecodeError: the text is not JSON.
    """
    return json.loads(text)  # Python's parser accepts NaN/Infinity: files from before the rule


def float_or_nan(value: Any) -> Any:
    """The value a reader that needs a float uses: NaN for None (null), anything else unchanged.

    Args:
        value: a value read from strict JSON.

    Returns:
        ``math.nan`` when ``value`` is None, else ``value``.
    """
    return math.nan if value is None else value


def nan_for_null(values: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """A mapping of numbers read from strict JSON, with null turned back into NaN.

    Args:
        values: e.g. a record's metric values or one metric's statistics.
        keep: keys whose None means "none" (not an undefined number) and stays None.

    Returns:
        A new dict.
    """
    return {k: v if k in keep else float_or_nan(v) for k, v in values.items()}

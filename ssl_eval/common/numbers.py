"""Numbers as text: one way to write a value, a p-value and a value with its interval.

A correlation then reads the same in the verdict's reasons and on every report surface.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fmt", "fmt_p", "value_with_interval"]


def fmt(value: Any) -> str:
    """A value for a table cell: floats signed with two decimals, ``-`` when undefined.

    Args:
        value: a float, None, or anything printable.

    Returns:
        The text.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.2f}" if isinstance(value, float) else str(value)


def fmt_p(value: Any) -> str:
    """A p-value: two significant digits, ``<1e-4`` below that, ``-`` when undefined.

    Args:
        value: the p-value, None or NaN.

    Returns:
        The text.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "<1e-4" if value < 1e-4 else f"{value:.2g}"


def value_with_interval(value: Any, low: Any, high: Any) -> str:
    """``+0.85 [+0.60, +0.95]``: a correlation with its interval, each as :func:`fmt` writes it.

    Args:
        value: the estimate.
        low: the interval's lower end (None or NaN: no interval).
        high: its upper end (None or NaN: no interval).

    Returns:
        The text; the value alone when either end is undefined.
    """
    if fmt(low) == "-" or fmt(high) == "-":
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"

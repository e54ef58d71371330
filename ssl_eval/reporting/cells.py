"""The text of every number a report shows: one function per kind of cell.

The terminal table (:mod:`ssl_eval.reporting.report`), the HTML page (:mod:`ssl_eval.reporting.html_page`)
and the Markdown artifact of the verdict task (:mod:`ssl_eval.reporting.markdown`) take a
metric's correlation cells from :func:`correlation_cells`, and the verdict's trust reasons
(:mod:`ssl_eval.verdict.trust`) write a correlation with :func:`ssl_eval.common.numbers.value_with_interval`, so a
correlation reads the same on every surface. Each surface escapes the text for its own markup.
"""

from __future__ import annotations

import math
from typing import Any

from ssl_eval.common.numbers import fmt, fmt_p, value_with_interval
from ssl_eval.metrics import METRICS

__all__ = ["CORRELATION_CELLS", "correlation_cells", "fmt", "fmt_p", "regret_text", "value_with_interval", "with_ci"]


def with_ci(c: dict[str, Any], stat: str) -> str:
    """``+0.85 [+0.60, +0.95]``: a statistic with its bootstrap interval.

    Args:
        c: a metric's correlation entry.
        stat: the statistic's key, e.g. ``spearman`` (its interval is ``<stat>_ci_low/high``).

    Returns:
        The text; the value alone when the entry has no interval.
    """
    return value_with_interval(c.get(stat), c.get(f"{stat}_ci_low"), c.get(f"{stat}_ci_high"))


def regret_text(c: dict[str, Any]) -> str:
    """A metric's selection regret with three decimals, ``-`` when undefined.

    Args:
        c: the metric's correlation entry.

    Returns:
        The text.
    """
    regret = c.get("regret")
    return "-" if regret is None or math.isnan(regret) else f"{regret:.3f}"


#: The cells of :func:`correlation_cells`, by the column heading that shows them.
CORRELATION_CELLS = ("metric", "better", "spearman", "spearman [95% CI]", "p", "kendall", "kendall [95% CI]", "pearson",
                     "pearson [95% CI]", "signed ρ", "spearman late [95% CI]", "signed ρ late", "regret", "pick")


def correlation_cells(name: str, c: dict[str, Any], *, pooled: bool = False) -> dict[str, str]:
    """A metric's correlation with the linear probe as the text of each table cell.

    Args:
        name: the metric's name.
        c: its correlation entry (``spearman``, ``spearman_ci_low``, ..., ``regret``, ``pick``).
        pooled: the entry is pooled over families: its pick keeps the family's name
            (a family's own table shows ``run/checkpoint``).

    Returns:
        Heading -> text, for every heading of :data:`CORRELATION_CELLS` (unescaped).
    """
    spec = METRICS.get(name)
    higher = spec.higher_is_better if spec is not None else c.get("higher_is_better")
    pick = c.get("pick") or "-"
    return {
        "metric": name, "better": "-" if higher is None else "higher" if higher else "lower",
        "spearman": fmt(c.get("spearman")), "spearman [95% CI]": with_ci(c, "spearman"), "p": fmt_p(c.get("spearman_p")),
        "kendall": fmt(c.get("kendall")), "kendall [95% CI]": with_ci(c, "kendall"),
        "pearson": fmt(c.get("pearson")), "pearson [95% CI]": with_ci(c, "pearson"),
        "signed ρ": fmt(c.get("spearman_signed")), "spearman late [95% CI]": with_ci(c, "spearman_late"),
        "signed ρ late": fmt(c.get("spearman_late_signed")), "regret": regret_text(c),
        "pick": pick if pooled else pick.split("/", 1)[-1],
    }

"""A family's verdict and correlations as Markdown (the Prefect artifact of the verdict task).

The verdict comes first: its summary sentences and the four answers, then the table of
correlations. Text that comes from the store (family, run and checkpoint names) is escaped
so that it shows as written and cannot add links, images or table cells.
"""

from __future__ import annotations

import re
from typing import Any

from ssl_eval.common.names import display_name
from ssl_eval.reporting.cells import correlation_cells
from ssl_eval.results.answers import VerdictRecord
from ssl_eval.verdict.answers import answers

_NUMBERS = ("spearman [95% CI]", "kendall", "pearson", "signed ρ", "signed ρ late", "regret")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def md_escape(text: str) -> str:
    """``text`` with every Markdown control character backslash-escaped, on one line.

    Args:
        text: store-derived text (any value; converted with ``str``).

    Returns:
        The escaped text, whitespace runs collapsed to one space.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def family_markdown(family: str, analysis: dict[str, Any], verdict: dict[str, Any] | None) -> str:
    """A family's verdict (summary and answers) and its correlation table, as Markdown.

    Args:
        family: the family's id (shown as the store names it).
        analysis: its analysis record (``n_with_probe``, ``metrics``).
        verdict: its verdict, or None (the table's trust column then shows ``-``).

    Returns:
        The Markdown text.
    """
    lines = [f"# {md_escape(display_name(family))}: verdict", ""]
    if verdict:
        lines += [md_escape(verdict.get("summary", "")), ""]
        lines += [f"- **{label}**: {md_escape(text)}" for label, text in answers(VerdictRecord.model_validate(verdict))]
        lines.append("")
    lines += [
        f"## Label-free metrics vs linear probe ({analysis['n_with_probe']} checkpoints)",
        "",
        "signed: x(+1 higher-is-better, -1 lower-is-better); [bootstrap 95% CI]",
        "",
        "| " + " | ".join(["metric", "trust", *_NUMBERS, "pick"]) + " |",
        "|---" * (len(_NUMBERS) + 3) + "|",
    ]
    trust = (verdict or {}).get("trust") or {}
    for name, c in analysis["metrics"].items():
        cells = correlation_cells(name, c)
        row = [md_escape(name), trust.get(name, {}).get("class", "-"), *(cells[col] for col in _NUMBERS), md_escape(cells["pick"])]
        lines.append("| " + " | ".join(row) + " |")  # the numbers are ours; names are escaped
    return "\n".join(lines)

"""One text for each correlation cell (ssl_eval/reporting/cells.py), the same on every surface.

The terminal table, the HTML page and the Markdown artifact of the analyze task show it the same.
"""

from __future__ import annotations

import html

from rich.console import Console

from ssl_eval.reporting.cells import CORRELATION_CELLS, correlation_cells
from ssl_eval.reporting.html_page import render_html
from ssl_eval.reporting.markdown import family_markdown, md_escape
from ssl_eval.reporting.report import render_table

ENTRY = {"spearman": 0.8512, "spearman_ci_low": 0.6049, "spearman_ci_high": 0.951, "spearman_p": 3.2e-5,
         "kendall": 0.7, "kendall_ci_low": float("nan"), "pearson": -0.25, "pearson_ci_low": -0.5, "pearson_ci_high": 0.1,
         "spearman_signed": -0.8512, "spearman_late": float("nan"), "spearman_late_signed": None,
         "regret": 0.01234, "pick": "simclr/run-1/epoch=07"}


def test_cells_of_one_entry():
    cells = correlation_cells("entropy_gaussian", ENTRY)
    assert list(cells) == list(CORRELATION_CELLS)
    assert cells == {
        "metric": "entropy_gaussian", "better": "lower",  # the registry's direction
        "spearman": "+0.85", "spearman [95% CI]": "+0.85 [+0.60, +0.95]", "p": "<1e-4",
        "kendall": "+0.70", "kendall [95% CI]": "+0.70",  # no interval: the value alone
        "pearson": "-0.25", "pearson [95% CI]": "-0.25 [-0.50, +0.10]",
        "signed ρ": "-0.85", "spearman late [95% CI]": "-", "signed ρ late": "-",  # NaN and None: undefined
        "regret": "0.012", "pick": "run-1/epoch=07",
    }
    assert correlation_cells("entropy_gaussian", ENTRY, pooled=True)["pick"] == "simclr/run-1/epoch=07"
    assert correlation_cells("silhouette", {})["better"] == "higher"
    assert correlation_cells("not_a_metric", {"higher_is_better": False})["better"] == "lower"


def test_every_surface_shows_the_same_cells():
    cells = correlation_cells("entropy_gaussian", ENTRY)
    shown = ("spearman [95% CI]", "signed ρ", "regret", "pick")
    markdown = family_markdown("simclr", {"n_with_probe": 12, "metrics": {"entropy_gaussian": ENTRY}}, None)
    row = next(line for line in markdown.splitlines() if line.startswith("| entropy"))
    assert all(f"| {cells[col]} |" in row for col in shown[:-1]) and row.endswith(f"| {md_escape(cells['pick'])} |")

    doc = {"workdir": "w", "failures": [], "gone": [], "pooled": {},
           "families": {"simclr": {"checkpoints": [], "late_fraction": 0.25, "alerts": {}, "correlations": {"entropy_gaussian": ENTRY}}}}
    page = render_html(doc)
    assert all(f">{html.escape(cells[col])}</td>" in page for col in shown)

    console = Console(width=400, record=True)
    render_table(doc, console)
    terminal = console.export_text()
    assert all(cells[col] in terminal for col in shown)


def test_a_verdict_reason_writes_a_correlation_as_the_tables_do():
    from ssl_eval.verdict.trust import _fmt

    assert _fmt(0.8512, 0.6049, 0.951) == "ρ " + correlation_cells("silhouette", ENTRY)["spearman [95% CI]"]
    assert _fmt(0.5, float("nan"), 0.9) == "ρ +0.50"  # no interval without both ends

"""The report on the terminal: every family's stored verdict, checkpoints and correlations.

:func:`~ssl_eval.reporting.document.collect` builds the document (the stored answers, marked
``stale`` where they no longer answer); ``render_table`` prints it with rich, per family, in
tables that fit the terminal; :mod:`ssl_eval.reporting.html_page` writes the same as one
self-contained HTML page with figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ssl_eval.analysis import ALERT_KINDS
from ssl_eval.common.names import display_id, display_name
from ssl_eval.reporting.cells import correlation_cells
from ssl_eval.reporting.document import SCHEMA_VERSION, _registry_order, collect, failures, gone, stale_line, to_json
from ssl_eval.results.answers import VerdictRecord
from ssl_eval.verdict.answers import answers

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["SCHEMA_VERSION", "collect", "failures", "gone", "render_table", "stale_line", "to_json", "_registry_order",
           "alert_lines", "fitted_family_table", "print_verdict", "probe_span"]


def probe_span(rows: list[dict[str, Any]]) -> str:
    """A family's checkpoints in one phrase: how many, the first and the best linear probe.

    Args:
        rows: the family's rows (:func:`ssl_eval.analysis.family_rows`).

    Returns:
        e.g. ``12 checkpoints, linear probe 0.890 at epoch 0, best 0.957 (run-0/epoch=08.ckpt)``.
    """
    probes = [r for r in rows if "linear_acc" in r["probe"]]
    if not probes:
        return f"{len(rows)} checkpoints, no probe"
    first, best = min(probes, key=lambda r: r["epoch"]), max(probes, key=lambda r: r["probe"]["linear_acc"])
    return (f"{len(rows)} checkpoints, linear probe {first['probe']['linear_acc']:.3f} at epoch {first['epoch']}, "
            f"best {best['probe']['linear_acc']:.3f} ({best['id'].split('/', 1)[-1]})")


def alert_lines(found: dict[str, Any]) -> list[str]:
    """One line per alerted checkpoint: ``collapse: <id>: <reason>``.

    Args:
        found: a family's alerts (kind -> checkpoint ids, and ``reasons``).

    Returns:
        The lines, in :data:`ALERT_KINDS` order.
    """
    reasons = found.get("reasons", {})
    return [f"{kind}: {cid}" + (f": {reasons[cid]}" if cid in reasons else "")
            for kind in ALERT_KINDS for cid in found.get(kind, [])]


# Family table columns, and the order in which they are left out when the terminal is
# too narrow (the JSON and CSV formats always hold everything).
FAMILY_COLUMNS = ("metric", "better", "spearman", "kendall", "pearson", "signed ρ", "signed ρ late", "regret", "pick")
DROP_ORDER = ("kendall", "pearson", "signed ρ late", "better", "regret", "pick")


def _family_table(family: str, data: dict[str, Any], columns: tuple[str, ...], *, ci: bool) -> Table:
    from rich.table import Table

    from ssl_eval.common.safe_text import rich_safe as escape  # control codes shown, never acting; no markup

    hidden = [c for c in FAMILY_COLUMNS if c not in columns]
    caption = ("spearman/kendall/pearson with the linear probe" + (" \\[bootstrap 95% CI]" if ci else "")
               + "; late: epochs >= late_fraction x last; signed: x(+1 higher-is-better, -1 lower)")
    if hidden or not ci:
        caption += f"; {'CIs, ' if not ci else ''}{', '.join(hidden)} left out for the terminal's width (--format json or csv has all)"
    table = Table(title=escape(f"{display_name(family)} — {probe_span(data['checkpoints'])}"), title_justify="left",
                  caption=caption, caption_justify="left")
    for col in columns:
        table.add_column(col, justify="left" if col in ("metric", "pick") else "right")
    for name, c in data["correlations"].items():
        cells = correlation_cells(name, c)
        table.add_row(*(escape(cells["spearman [95% CI]" if ci and col == "spearman" else col]) for col in columns))
    return table


def fitted_family_table(family: str, data: dict[str, Any], width: int) -> Table:
    """The family's table with as many columns as fit ``width`` characters.

    The least important columns go first (DROP_ORDER), then the confidence intervals.

    Args:
        family: the family's name.
        data: its entry in the report document.
        width: the console's width in characters.

    Returns:
        A rich ``Table`` (the narrowest one when none fits).
    """
    from rich.console import Console

    measure = Console(width=10_000)
    columns: tuple[str, ...] = FAMILY_COLUMNS
    for ci in (True, False):
        for drop in (None, *DROP_ORDER):
            if drop is not None:
                columns = tuple(c for c in columns if c != drop)
            table = _family_table(family, data, columns, ci=ci)
            if measure.measure(table).maximum <= width:
                return table
        columns = FAMILY_COLUMNS if ci else columns
    return table


def print_verdict(console: Console, family: str, verdict: dict[str, Any]) -> None:
    """The family's summary sentences and its four answers, before its numbers.

    Args:
        console: the rich ``Console`` to print on.
        family: the family's name.
        verdict: its verdict (store text is escaped).
    """
    from rich.table import Table

    from ssl_eval.common.safe_text import rich_safe as escape  # control codes shown, never acting; no markup

    console.print(f"[bold]{escape(display_name(family))}[/bold]: {escape(verdict.get('summary', ''))}")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, text in answers(VerdictRecord.model_validate(verdict)):
        grid.add_row(label, escape(text))
    console.print(grid)


def render_table(doc: dict[str, Any], console: Console | None = None) -> None:
    """Print the report as tables that fit the console's width (the terminal's, else 80).

    Names, ids and messages come from the store's files: every one is escaped
    (:func:`ssl_eval.common.safe_text.rich_safe`), so text such as ``[/x]`` from a checkpoint's keys
    prints as it is, never as rich markup, and a control code (``ESC[2J``, a right-to-left
    override, a newline) shows as an escape instead of acting on the terminal.

    Args:
        doc: the report document (:func:`collect`).
        console: the rich ``Console`` to print on; None: a new one on the terminal.
    """
    from rich.console import Console
    from rich.table import Table

    from ssl_eval.common.safe_text import rich_safe as escape  # control codes shown, never acting; no markup

    console = console or Console()
    if doc.get("configuration_unchecked") and doc["families"]:
        console.print(f"[dim]answers not checked against the configuration: {escape(doc['configuration_unchecked'])}[/dim]")
    if not doc["families"]:
        console.print(f"No evaluated checkpoints in {escape(doc['workdir'])}; run `ssl-eval evaluate STORE` first.")
    for family, data in doc["families"].items():
        if data.get("stale"):
            console.print(f"[yellow]{escape(display_name(family))}: {escape(stale_line(data['stale']))}[/yellow]")
        if data.get("verdict"):
            print_verdict(console, family, data["verdict"])
        console.print(fitted_family_table(family, data, console.width))
        for line in alert_lines(data.get("alerts", {})):
            console.print(f"[yellow]{escape(line)}[/yellow]")
    pooled = doc.get("pooled") or {}
    if pooled.get("raw") and len(pooled.get("families", [])) > 1:
        names = ", ".join(display_name(f) for f in pooled["families"])
        if pooled.get("stale"):
            console.print(f"[yellow]pooled: {escape(stale_line(pooled['stale']))}[/yellow]")
        table = Table(title=escape(f"pooled over {names} ({pooled['n_checkpoints']} checkpoints)"),
                      title_justify="left")
        for col in ("metric", "signed ρ pooled", "signed ρ within-family ranks", "regret", "pick"):
            table.add_column(col, justify="left" if col in ("metric", "pick") else "right")
        for name, c in pooled["raw"].items():
            cells = correlation_cells(name, c, pooled=True)
            ranked = correlation_cells(name, pooled.get("within_family_rank", {}).get(name, {}), pooled=True)
            table.add_row(*(escape(text) for text in (name, cells["signed ρ"], ranked["signed ρ"], cells["regret"], cells["pick"])))
        console.print(table)
    for entries, title, column, field in (
        (doc["failures"], "Failed checkpoints (retried when the file changes)", "reason", "error"),
        (doc.get("gone"), "Deleted from the store (left out of the analyses; history kept)", "was", "source"),
    ):
        if entries:
            table = Table(title=title, title_justify="left")
            table.add_column("checkpoint")
            table.add_column(column)
            for entry in entries:
                table.add_row(escape(display_id(entry["id"])), escape(entry.get(field, "")))
            console.print(table)

"""The report: every family's checkpoints, metrics, probe accuracy and correlations.

``collect`` builds the JSON document documented in the README; it only reads the work dir.
It shows the analyses and verdicts the monitor flow stored, never computes them: a family
whose stored answers no longer answer for its records or for the configuration as the next
run would resolve it is marked ``stale`` ("stale, run `ssl-eval evaluate`", with the reasons),
so every surface shows what MLflow and the Prefect artifact show. ``render_table`` prints the
per-family correlation table with rich; :mod:`ssl_eval.reporting.html_page` writes the same as
one self-contained HTML page with figures.
"""

from __future__ import annotations

from typing import Any

from ssl_eval.analysis import (
    ALERT_KINDS,
    ANALYSIS_VERSION,
    STALE_HINT,
    StoredAnswers,
    alerts,
    current_config,
    families,
    family_rows,
    rows_digest,
    stored_answers,
    stored_pooled,
)
from ssl_eval.common.names import display_id, display_name
from ssl_eval.common.strict_json import encode
from ssl_eval.config import Config
from ssl_eval.metrics import METRICS
from ssl_eval.reporting.cells import correlation_cells
from ssl_eval.results.answers import answers_key
from ssl_eval.results.parts import Part
from ssl_eval.results.workspace import Workspace
from ssl_eval.verdict.answers import answers

#: 3: families.<family>.verdict, alerts.reasons, and strict JSON (null where undefined,
#: the rule of :mod:`ssl_eval.common.strict_json`).
#: 4: the stored answers only: families.<family>.stale and pooled.stale (null when current, else
#: ``text`` and ``reasons``); a family without a stored verdict has ``verdict`` null.
SCHEMA_VERSION = 4
_POOLED_FIELDS = ("families", "archs", "n_checkpoints", "late_fraction", "raw", "within_family_rank")


def _listed(workspace: Workspace, part: Part) -> list[dict[str, Any]]:
    records = workspace.records
    return [{"id": key, **rec} for key in records.ids_with(part) if (rec := records.get(key, part))]


def failures(workspace: Workspace) -> list[dict[str, Any]]:
    """Checkpoints whose embedding failed, with their failure records.

    Args:
        workspace: the work dir to read.

    Returns:
        One dict per failed checkpoint: ``id`` and the record (``error``, ``permanent``, ...).
    """
    return _listed(workspace, Part.FAILURE)


def gone(workspace: Workspace) -> list[dict[str, Any]]:
    """Checkpoints deleted from the store: left out of the analyses, their records kept.

    Args:
        workspace: the work dir to read.

    Returns:
        One dict per deleted checkpoint: ``id`` and the record (``source``, ``time``).
    """
    return _listed(workspace, Part.GONE)


def _registry_order(correlations: dict[str, Any]) -> dict[str, Any]:
    """Metrics in the registry's order (records store keys sorted alphabetically)."""
    return {name: correlations[name] for name in METRICS if name in correlations}


def stale_entry(reasons: tuple[str, ...] | list[str]) -> dict[str, Any] | None:
    """The ``stale`` entry of a family or of the pooled analysis in the report.

    Args:
        reasons: why the stored answers are stale; empty when they are current.

    Returns:
        None when current, else ``text`` ("stale, run `ssl-eval evaluate`") and ``reasons``.
    """
    return {"text": STALE_HINT, "reasons": list(reasons)} if reasons else None


def _family_entry(family: str, rows: list[dict[str, Any]], stored: StoredAnswers) -> dict[str, Any]:
    """A family's entry: its stored verdict first (the answer before the numbers), then whether it is stale."""
    analysis = stored.analysis
    return {
        "verdict": stored.verdict.answers() if stored.verdict is not None else None,
        "stale": stale_entry(stored.stale),
        "name": display_name(family),  # the folder's name; the key is the family's id
        "checkpoints": rows,
        "late_fraction": analysis.late_fraction if analysis is not None else None,
        "alerts": (analysis.alerts if analysis is not None else None) or alerts(rows),
        "correlations": _registry_order(analysis.metrics) if analysis is not None else {},
    }


def _pooled_entry(workspace: Workspace, doc: dict[str, Any]) -> dict[str, Any]:
    """The stored pooled analysis, and whether it is stale; empty without families."""
    if not doc["families"]:
        return {}
    pooled = stored_pooled(workspace)
    rows = [{**r, "family": f} for f, data in doc["families"].items() for r in data["checkpoints"]]
    if pooled is None:
        return {"stale": stale_entry(["no pooled analysis stored"])}
    stale = ["the pooled analysis was written by another version of ssl-eval"] if pooled.version != ANALYSIS_VERSION else []
    if not stale and pooled.inputs_digest != rows_digest(rows):
        stale.append("the records changed since the pooled analysis")
    found = pooled.model_dump(mode="python", include=set(_POOLED_FIELDS))
    entry = {k: _registry_order(found[k]) if k in ("raw", "within_family_rank") else found[k] for k in _POOLED_FIELDS}
    return {**entry, "stale": stale_entry(stale)}


def collect(workspace: Workspace, *, config: Config | None = None) -> dict[str, Any]:
    """The report document (the JSON documented in the README); only reads the work dir.

    Args:
        workspace: the work dir to read.
        config: the configuration to hold the stored answers to; None: as the next monitor run
            would resolve it (:func:`~ssl_eval.analysis.current_config`), not compared when it
            cannot be known.

    Returns:
        ``schema_version``, ``workdir``, ``families`` (each with its stored verdict first,
        ``stale``, checkpoints, alerts, correlations), ``pooled``, ``failures`` and ``gone``.
    """
    if config is None:
        config, _ = current_config(workspace)
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "workdir": str(workspace.root), "families": {}}
    for family in families(workspace):
        rows = family_rows(workspace, family)
        key = answers_key(config, family) if config is not None else None
        doc["families"][family] = _family_entry(family, rows, stored_answers(workspace, family, answers_key=key,
                                                                               digest=rows_digest(rows)))
    doc["pooled"] = _pooled_entry(workspace, doc)
    doc["failures"] = failures(workspace)
    doc["gone"] = gone(workspace)
    return doc


def to_json(doc: dict[str, Any]) -> str:
    """The report as strict JSON: null where a value is undefined, never NaN or Infinity.

    Args:
        doc: the report document (:func:`collect`).

    Returns:
        The JSON text (indent 1).
    """
    return encode(doc, indent=1)


def stale_line(stale: dict[str, Any]) -> str:
    """A ``stale`` entry as one line: the hint, then the reasons.

    Args:
        stale: the entry (:func:`stale_entry`).

    Returns:
        e.g. ``stale, run `ssl-eval evaluate` (the configuration changed since the verdict)``.
    """
    return f"{stale['text']} ({'; '.join(stale['reasons'])})"


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


def _family_table(family: str, data: dict[str, Any], columns: tuple[str, ...], *, ci: bool):
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


def fitted_family_table(family: str, data: dict[str, Any], width: int):
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


def print_verdict(console, family: str, verdict: dict[str, Any]) -> None:
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
    for label, text in answers(verdict):
        grid.add_row(label, escape(text))
    console.print(grid)


def render_table(doc: dict[str, Any], console=None) -> None:
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
        table = Table(title=escape(f"pooled over {names} ({pooled['n_checkpoints']} checkpoints)"),
                      title_justify="left")
        for col in ("metric", "signed ρ pooled", "signed ρ within-family ranks", "regret", "pick"):
            table.add_column(col, justify="left" if col in ("metric", "pick") else "right")
        for name, c in pooled["raw"].items():
            cells = correlation_cells(name, c, pooled=True)
            ranked = correlation_cells(name, pooled.get("within_family_rank", {}).get(name, {}), pooled=True)
            table.add_row(*(escape(text) for text in (name, cells["signed ρ"], ranked["signed ρ"], cells["regret"], cells["pick"])))
        console.print(table)
    if doc["failures"]:
        table = Table(title="Failed checkpoints (retried when the file changes)", title_justify="left")
        table.add_column("checkpoint")
        table.add_column("reason")
        for f in doc["failures"]:
            table.add_row(escape(display_id(f["id"])), escape(f.get("error", "")))
        console.print(table)
    if doc.get("gone"):
        table = Table(title="Deleted from the store (left out of the analyses; history kept)", title_justify="left")
        table.add_column("checkpoint")
        table.add_column("was")
        for g in doc["gone"]:
            table.add_row(escape(display_id(g["id"])), escape(g.get("source", "")))
        console.print(table)

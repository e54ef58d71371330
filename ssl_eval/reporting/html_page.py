"""``ssl-eval report --html OUT.html``: one self-contained page of the answers per family.

Figures are embedded as base64 PNG data URIs, CSS is inline, there is no script and nothing is
fetched; the page answers, per family, which label-free metric tracks the linear probe and which
checkpoint it would pick.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from ssl_eval.common.names import display_name
from ssl_eval.reporting.cells import correlation_cells, fmt
from ssl_eval.reporting.report import alert_lines, probe_span, stale_line
from ssl_eval.results.answers import VerdictRecord
from ssl_eval.verdict import STATES
from ssl_eval.verdict.answers import answers

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1320px;color:#222;padding:0 16px}
h1{font-size:24px}h2{font-size:19px;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
h3{font-size:15px;margin-top:20px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0 16px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left}
td.pos{background:#e3f0fa}td.neg{background:#fbe5e1}
img{max-width:100%;height:auto;border:1px solid #eee;margin:6px 0}
.note{color:#555;font-size:13px;max-width:1000px}
.alert{background:#fff4d6;border-left:4px solid #e0a800;padding:6px 10px;margin:8px 0;font-size:13px}
.ok{color:#2a7a2a;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px;margin:12px 0 8px}
.card{border:1px solid #d6d6d6;border-radius:8px;padding:10px 16px 12px;background:#fcfcfc}
.card h3{margin:2px 0 6px;font-size:17px}.card h3 a{color:inherit;text-decoration:none}
.card p{margin:4px 0 8px;font-size:14px;line-height:1.45}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 12px;margin:0;font-size:13px}
.card dt{font-weight:600;color:#444}.card dd{margin:0;color:#333}
.badge{display:inline-block;font-size:12px;font-weight:600;border-radius:10px;padding:1px 9px;margin-left:8px;
vertical-align:2px;color:#fff}
.b-improving{background:#2a7a2a}.b-plateaued{background:#49708a}.b-degrading{background:#c26a00}
.stale{color:#a05a00}
.b-collapsed{background:#b3261e}.b-insufficient{background:#888}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _signed_cell(value: Any, text: str) -> str:
    """A signed correlation's cell, shaded by its sign where it is clear (beyond +-0.3)."""
    cls = "" if not isinstance(value, float) or math.isnan(value) else ("pos" if value > 0.3 else "neg" if value < -0.3 else "")
    return f'<td class="{cls}">{html.escape(text)}</td>'


def _table(head: list[str], rows: list[str]) -> str:
    cells = "".join(f'<th class="{"l" if i == 0 else ""}">{html.escape(h)}</th>' for i, h in enumerate(head))
    return f"<table><tr>{cells}</tr>{''.join(rows)}</table>"


_FAMILY_HEAD = ["metric", "better", "spearman [95% CI]", "p", "kendall [95% CI]", "pearson [95% CI]", "signed ρ",
                "spearman late [95% CI]", "signed ρ late", "regret", "pick"]
_SIGNED = {"signed ρ": "spearman_signed", "signed ρ late": "spearman_late_signed"}


def _correlation_rows(correlations: dict[str, Any]) -> list[str]:
    out = []
    for name, c in correlations.items():
        cells = correlation_cells(name, c)
        out.append("<tr>" + "".join(
            _signed_cell(c.get(_SIGNED[col]), cells[col]) if col in _SIGNED
            else f'<td class="{"l" if col in ("metric", "pick") else ""}">{html.escape(cells[col])}</td>'
            for col in _FAMILY_HEAD) + "</tr>")
    return out


def _alerts(found: dict[str, Any]) -> str:
    shown = [f'<div class="alert">{html.escape(line)}</div>' for line in alert_lines(found)]
    return "".join(shown) or '<p class="ok">No collapse or non-finite embeddings.</p>'


def _anchor(family: str) -> str:
    return "f-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in family)


def _stale(stale: dict[str, Any] | None) -> str:
    """The family's stale line (stored answers no longer current), or nothing."""
    return f'<p class="stale"><b>{html.escape(stale_line(stale))}</b></p>' if stale else ""


def _verdict_card(family: str, verdict: dict[str, Any], stale: dict[str, Any] | None) -> str:
    state = str((verdict.get("progress") or {}).get("state", "insufficient"))
    badge = state if state in STATES else "insufficient"
    found = VerdictRecord.model_validate(verdict)
    rows = "".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(text)}</dd>" for label, text in answers(found))
    return (f'<div class="card"><h3><a href="#{_anchor(family)}">{html.escape(display_name(family))}</a>'
            f'<span class="badge b-{badge}">{html.escape(state)}</span></h3>'
            f"{_stale(stale)}<p>{html.escape(verdict.get('summary', ''))}</p><dl>{rows}</dl></div>")


def render_html(doc: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (figures inlined as PNG); store text escaped.

    Args:
        doc: the report document (:func:`ssl_eval.reporting.report.collect`).

    Returns:
        The HTML text.
    """
    from ssl_eval.reporting import figures as plots
    parts = [f"<h1>ssl-eval report</h1><p class=note>Work dir <code>{html.escape(doc['workdir'])}</code>. "
             "First the verdict per family: is training still improving (a trend test on the label-free signals "
             "that can be trusted), which signals to trust, which checkpoint to keep, and when a label-free early "
             "stop fires; docs/verdicts.md gives the rules.</p>"]
    verdicts = {f: data for f, data in doc["families"].items() if data.get("verdict")}
    if verdicts:
        parts.append('<div class="cards">' + "".join(_verdict_card(f, d["verdict"], d.get("stale")) for f, d in verdicts.items())
                     + "</div>")
    parts.append("<p class=note>The numbers behind them, for every model family: how each label-free metric "
                 "tracks the linear-probe accuracy over all "
                 "its checkpoints (every training run), with bootstrap 95% percentile intervals (1000 resamples of "
                 "checkpoints), the late window (epochs at or after late_fraction × the last epoch), and the "
                 "checkpoint each metric would pick with its regret (best probe accuracy minus the pick's). "
                 "<b>Signed</b> correlations are multiplied by −1 for lower-is-better metrics: positive means the "
                 "metric, read in its documented direction, agrees with the probe.</p>")
    if not doc["families"]:
        parts.append("<p>No evaluated checkpoints yet; run <code>ssl-eval evaluate STORE</code> first.</p>")
    columns = {f: data["correlations"] for f, data in doc["families"].items()}
    pooled = doc.get("pooled") or {}
    if pooled.get("raw") and len(columns) > 1:
        columns = {**columns, "pooled": pooled["raw"], "pooled (ranks)": pooled.get("within_family_rank", {})}
    if doc["families"]:
        parts.append("<h2>Overview</h2>")
        parts.append(_img(plots.figure_png(plots.correlation_heatmap(columns)), "signed Spearman heatmap"))
        late = {f: data["correlations"] for f, data in doc["families"].items()}
        parts.append(_img(plots.figure_png(plots.correlation_heatmap(
            late, stat="spearman_late_signed", title="Signed Spearman, late window")), "late-window heatmap"))
    for family, data in doc["families"].items():
        rows = data["checkpoints"]
        parts.append(f"<h2 id=\"{_anchor(family)}\">{html.escape(display_name(family))}</h2>"
                     f"<p class=note>{html.escape(probe_span(rows))}; late window "
                     f"from late_fraction = {fmt(data.get('late_fraction'))[1:]}.</p>{_stale(data.get('stale'))}")
        parts.append(_alerts(data.get("alerts", {})))
        parts.append(_table(_FAMILY_HEAD, _correlation_rows(data["correlations"])))
        parts.append(_img(plots.figure_png(plots.trajectories(rows, family)), f"{family} trajectories"))
        parts.append(_img(plots.figure_png(plots.metric_vs_probe(rows, family, data["correlations"])), f"{family} scatter"))
    if pooled.get("raw") and len(doc["families"]) > 1:
        parts.append(_pooled_section(pooled))
    parts.append(_failures_section(doc["failures"]))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ssl-eval report</title>'
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")


def _pooled_section(pooled: dict[str, Any]) -> str:
    """The pooled correlations across families: values as they are, and within-family ranks."""
    head = (f"<h2>Across families (pooled)</h2><p class=note>All {pooled['n_checkpoints']} checkpoints of "
            f"{html.escape(', '.join(pooled['families']))} (architectures: {html.escape(', '.join(pooled['archs']))}) "
            "together. <i>Pooled</i>: values as they are, so a metric must put different methods on one "
            "scale (the paper: entropy may, clustering metrics may not); its pick is any family's checkpoint. "
            "<i>Within-family ranks</i>: metric and probe replaced by their rank inside each family first.</p>")
    pooled_rows = []
    for name, c in pooled["raw"].items():
        ranked = pooled.get("within_family_rank", {}).get(name, {})
        cells, ranked_cells = correlation_cells(name, c, pooled=True), correlation_cells(name, ranked, pooled=True)
        pooled_rows.append(
            f'<tr><td class="l">{html.escape(name)}</td><td>{html.escape(cells["spearman [95% CI]"])}</td>'
            f'{_signed_cell(c.get("spearman_signed"), cells["signed ρ"])}'
            f'<td>{html.escape(ranked_cells["spearman [95% CI]"])}</td>{_signed_cell(ranked.get("spearman_signed"), ranked_cells["signed ρ"])}'
            f'<td>{html.escape(cells["regret"])}</td><td class="l">{html.escape(cells["pick"])}</td></tr>')
    return head + _table(["metric", "pooled spearman [95% CI]", "signed", "within-family-rank spearman [95% CI]",
                          "signed", "regret", "pick"], pooled_rows)


def _failures_section(failures: list[dict[str, Any]]) -> str:
    """The table of failed checkpoints and their reasons (escaped), or "None."."""
    if not failures:
        return '<h2>Failed checkpoints</h2><p class="ok">None.</p>'
    return "<h2>Failed checkpoints</h2>" + _table(["checkpoint", "reason"], [
        f'<tr><td class="l">{html.escape(f["id"])}</td><td class="l" style="white-space:normal">'
        f'{html.escape(str(f.get("error", "")))}</td></tr>' for f in failures])


def write_html(doc: dict[str, Any], path: str | Path) -> Path:
    """Write the report page to ``path`` (parent folders are created).

    Args:
        doc: the report document (:func:`ssl_eval.reporting.report.collect`).
        path: the HTML file to write.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(doc), encoding="utf-8")
    return path

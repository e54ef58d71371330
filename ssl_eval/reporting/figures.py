"""Figures of the analysis: functions that return matplotlib Figures (never saved or shown here; callers save them, e.g. :func:`figure_png`).

Figures are built with ``matplotlib.figure.Figure`` on an Agg canvas, not through pyplot:
no global figure state, no GUI backend. matplotlib is still not thread-safe (its font cache
and rcParams are shared by every figure; matplotlib's FAQ asks for a lock): every function
here builds or draws under :data:`DRAWING`, and a caller that draws a figure itself
(``savefig``, MLflow's ``log_figure``) holds it too.
"""

from __future__ import annotations

import functools
import io
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ssl_eval.analysis import PROBE_TARGET
from ssl_eval.metrics import METRICS

PANEL_COLUMNS = 5
#: Held while a figure is built or drawn: one thread at a time uses matplotlib (re-entrant).
DRAWING = threading.RLock()
_F = TypeVar("_F", bound=Callable[..., Any])


def _drawing(function: _F) -> _F:
    @functools.wraps(function)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with DRAWING:
            return function(*args, **kwargs)

    return locked  # type: ignore[return-value]  # functools.wraps keeps the signature mypy cannot see


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _grid(fig: Figure, n: int) -> list[Axes]:
    if n == 0:  # nothing to plot yet (every checkpoint failed or was deleted): an empty figure, no panels
        return []
    cols = min(PANEL_COLUMNS, max(1, n))
    rows = math.ceil(n / cols)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n])


def _direction(name: str) -> str:
    return "higher is better" if METRICS[name].higher_is_better else "lower is better"


def plotted_metrics(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Label-free metrics with at least one finite value in ``rows``, in registry order.

    Args:
        rows: the family's rows (:func:`ssl_eval.analysis.family_rows`).

    Returns:
        The metric names.
    """
    return [n for n, s in METRICS.items() if not s.needs_labels
            and any(np.isfinite(r["metrics"].get(n, math.nan)) for r in rows)]


@_drawing
def trajectories(rows: Sequence[dict[str, Any]], family: str) -> Figure:
    """Small multiples: the probe accuracy and each label-free metric against epoch, one line per training run.

    Args:
        rows: the family's rows (:func:`ssl_eval.analysis.family_rows`).
        family: the family's name, for the title.

    Returns:
        The figure (not saved).
    """
    names = [PROBE_TARGET] + plotted_metrics(rows)
    fig = _figure(2.6 * min(PANEL_COLUMNS, len(names)), 2.1 * math.ceil(len(names) / PANEL_COLUMNS) + 0.4)
    runs = sorted({r["run"] for r in rows})
    for ax, name in zip(_grid(fig, len(names)), names, strict=True):
        for i, run in enumerate(runs):
            mine = [r for r in rows if r["run"] == run]
            part = "probe" if name == PROBE_TARGET else "metrics"
            ax.plot([r["epoch"] for r in mine], [r[part].get(name, math.nan) for r in mine],
                    marker="o", ms=3, lw=1.2, color=f"C{i % 10}", label=run)
        title = "linear probe acc." if name == PROBE_TARGET else f"{name}\n({_direction(name)})"
        ax.set_title(title, fontsize=9, fontweight="bold" if name == PROBE_TARGET else "normal")
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch", fontsize=7)
    if runs:
        fig.axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle(f"{family}: metrics and probe against epoch", fontsize=11)
    return fig


@_drawing
def metric_vs_probe(rows: Sequence[dict[str, Any]], family: str, correlations: dict[str, Any] | None = None) -> Figure:
    """Small multiples: probe accuracy (y) against each label-free metric (x), colour = epoch.

    Args:
        rows: the family's rows (:func:`ssl_eval.analysis.family_rows`).
        family: the family's name, for the title.
        correlations: metric -> its correlation entry; its ``spearman_signed`` goes in the title.

    Returns:
        The figure (not saved).
    """
    names = plotted_metrics(rows)
    correlations = correlations or {}
    fig = _figure(2.6 * min(PANEL_COLUMNS, max(1, len(names))), 2.2 * max(1, math.ceil(len(names) / PANEL_COLUMNS)) + 0.6)
    labelled = [r for r in rows if PROBE_TARGET in r["probe"]]
    epochs = [r["epoch"] for r in labelled]
    scatter = None
    for ax, name in zip(_grid(fig, len(names)), names, strict=True):
        scatter = ax.scatter([r["metrics"].get(name, math.nan) for r in labelled], [r["probe"][PROBE_TARGET] for r in labelled],
                             c=epochs, cmap="viridis", s=14, vmin=min(epochs, default=0), vmax=max(epochs, default=1))
        rho = correlations.get(name, {}).get("spearman_signed", math.nan)
        ax.set_title(f"{name}\nsigned ρ = {rho:+.2f}" if np.isfinite(rho) else name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(4))  # long tick labels (0.015) must not run together
        ax.set_ylabel("probe acc.", fontsize=7)
    if scatter is not None:
        fig.colorbar(scatter, ax=fig.axes, shrink=0.6, label="epoch")
    fig.suptitle(f"{family}: linear probe accuracy against each metric", fontsize=11)
    return fig


@_drawing
def correlation_heatmap(columns: dict[str, dict[str, Any]], *, stat: str = "spearman_signed",
                        title: str = "Signed Spearman correlation with the linear probe") -> Figure:
    """Metrics (rows) by families (columns) coloured by ``stat`` in [-1, 1].

    A ``*_signed`` stat is positive when the metric, read in its registry direction, rises with the probe.

    Args:
        columns: column label (a family, or "pooled") -> its metric -> stats mapping.
        stat: the statistic to show, e.g. ``spearman_signed``.
        title: the figure's title.

    Returns:
        The figure (not saved).
    """
    labels = list(columns)
    names = [n for n in METRICS if any(n in c for c in columns.values())]
    values = np.array([[columns[f].get(n, {}).get(stat, math.nan) for f in labels] for n in names], dtype=float)
    values = values.reshape(len(names), len(labels))
    fig = _figure(1.6 + 1.1 * max(1, len(labels)), 1.2 + 0.38 * max(1, len(names)))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, "–" if not np.isfinite(v) else f"{v:+.2f}", ha="center", va="center", fontsize=7,
                color="white" if np.isfinite(v) and abs(v) > 0.6 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=10)
    return fig


@_drawing
def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes.

    Args:
        fig: a figure of this module.

    Returns:
        The PNG file's content.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()

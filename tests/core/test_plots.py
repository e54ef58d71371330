"""The figures: Figures returned (never saved or shown), panels per metric, heatmap values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from ssl_eval.reporting import figures as plots


def _rows():
    return [
        {"id": f"f/run-{r}/e{e}", "run": f"run-{r}", "epoch": e, "flags": [],
         "metrics": {"silhouette": 0.1 * e, "entropy_gaussian": -float(e), "rankme": math.nan},
         "probe": {"linear_acc": 0.5 + 0.05 * e}}
        for r in range(2) for e in range(4)
    ]


@pytest.mark.slow
def test_trajectories_one_panel_per_metric_plus_probe_and_a_line_per_run():
    fig = plots.trajectories(_rows(), "f")
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    # rankme has no finite value: not drawn
    assert [ax.get_title().split("\n")[0] for ax in visible] == ["linear probe acc.", "silhouette", "entropy_gaussian"]
    assert len(visible[1].get_lines()) == 2
    assert "lower is better" in visible[2].get_title()
    assert plots.figure_png(fig)[:4] == b"\x89PNG"


def test_scatter_titles_show_signed_correlation():
    fig = plots.metric_vs_probe(_rows(), "f", {"entropy_gaussian": {"spearman_signed": 1.0}})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert "entropy_gaussian\nsigned ρ = +1.00" in titles and "silhouette" in titles


def test_heatmap_values_and_missing_cells():
    columns = {"a": {"silhouette": {"spearman_signed": 0.5}}, "b": {"rankme": {"spearman_signed": -0.25}}}
    fig = plots.correlation_heatmap(columns)
    ax = fig.axes[0]
    data = ax.get_images()[0].get_array()
    assert data.shape == (2, 2) and data[0, 0] == 0.5 and data[1, 1] == -0.25 and np.ma.is_masked(data[0, 1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert {t.get_text() for t in ax.texts} == {"+0.50", "-0.25", "–"}


def test_no_pyplot_state_is_touched():
    import sys

    plots.trajectories(_rows(), "f")
    assert "matplotlib.pyplot" not in sys.modules or not __import__("matplotlib.pyplot").pyplot.get_fignums()

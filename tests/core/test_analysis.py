from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ssl_eval.analysis import analyze_rows, correlate, selection_regret


def test_correlate_matches_scipy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=12), rng.normal(size=12)
    c = correlate(list(x), list(y))
    assert c["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert c["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic)
    assert c["pearson_p"] == pytest.approx(stats.pearsonr(x, y).pvalue)


def test_correlate_undefined_cases_are_nan():
    assert math.isnan(correlate([1.0, 2.0], [1.0, 2.0])["spearman"])  # n < 3
    assert math.isnan(correlate([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])["pearson"])  # constant
    assert correlate([1, float("nan"), 3, 4], [1, 2, 3, 5])["n"] == 3


def test_regret_reads_direction():
    probe = [0.5, 0.9, 0.7]
    assert selection_regret([1.0, 3.0, 2.0], probe, higher_is_better=True) == (1, 0.0)
    pick, regret = selection_regret([1.0, 3.0, 2.0], probe, higher_is_better=False)
    assert pick == 0 and regret == pytest.approx(0.4)


def test_analyze_rows_late_window():
    rows = [
        {"id": f"f/r/e{e}", "epoch": e, "metrics": {"rankme": float(v)}, "probe": {"linear_acc": p}}
        for e, v, p in [(0, 1, 0.1), (1, 2, 0.2), (2, 3, 0.3), (3, 5, 0.5), (4, 4, 0.6), (5, 6, 0.7)]
    ]
    out = analyze_rows(rows, late_fraction=0.5)["metrics"]["rankme"]
    # late window: epochs >= 0.5 * 5, i.e. 3, 4, 5
    assert out["n"] == 6 and out["n_late"] == 3
    assert out["spearman_late"] == pytest.approx(stats.spearmanr([5, 4, 6], [0.5, 0.6, 0.7]).statistic)
    assert out["pick"] == "f/r/e5" and out["regret"] == 0.0

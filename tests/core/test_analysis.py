from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ssl_eval.analysis import analyze_rows, correlate, pooled_tables, selection_regret


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


def test_bootstrap_statistics_match_scipy_with_ties():
    from ssl_eval.analysis.correlation import _kendall_rows, _pearson_rows

    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, size=(30, 9)).astype(float)  # ties, as repeated checkpoints give
    b = rng.normal(size=(30, 9))
    b[:, :3] = b[:, :1]
    a[0] = 1.0  # a constant row: undefined
    assert np.allclose(_kendall_rows(a, b, block_elements=200), [stats.kendalltau(x, y).statistic for x, y in zip(a, b, strict=True)], equal_nan=True)
    spearman = _pearson_rows(stats.rankdata(a, axis=1), stats.rankdata(b, axis=1))
    assert np.allclose(spearman, [stats.spearmanr(x, y).statistic for x, y in zip(a, b, strict=True)], equal_nan=True)


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate():
    from ssl_eval.analysis import bootstrap_ci

    rng = np.random.default_rng(2)
    x = rng.normal(size=20)
    y = x + 0.5 * rng.normal(size=20)
    ci = bootstrap_ci(list(x), list(y), random_state=3)
    assert ci == bootstrap_ci(list(x), list(y), random_state=3)
    point = correlate(list(x), list(y))
    for stat in ("spearman", "kendall", "pearson"):
        assert -1 <= ci[f"{stat}_ci_low"] <= point[stat] <= ci[f"{stat}_ci_high"] <= 1
    # the percentile interval of a hand-rolled bootstrap with the same draws
    index = np.random.default_rng(3).integers(0, 20, size=(1000, 20))
    draws = [stats.pearsonr(x[i], y[i]).statistic for i in index]
    assert ci["pearson_ci_low"] == pytest.approx(np.percentile(draws, 2.5))
    assert math.isnan(bootstrap_ci([1, 2], [1, 2])["spearman_ci_low"])
    with pytest.raises(ValueError, match="confidence must be in"):
        bootstrap_ci(list(x), list(y), confidence=95)


def test_signed_and_late_statistics_read_direction():
    rows = [
        {"id": f"f/r/e{e}", "run": "r", "epoch": e, "flags": [], "probe": {"linear_acc": 0.1 * e},
         "metrics": {"entropy_gaussian": -float(e) + (0.5 if e == 4 else 0.0), "rankme": float(e)}}
        for e in range(8)
    ]
    out = analyze_rows(rows, late_fraction=0.5)
    ent = out["metrics"]["entropy_gaussian"]
    assert ent["higher_is_better"] is False
    assert ent["spearman"] == pytest.approx(-1.0) and ent["spearman_signed"] == pytest.approx(1.0)
    late = [4, 5, 6, 7]  # epochs >= 0.5 * 7
    assert ent["n_late"] == 4
    assert ent["kendall_late"] == pytest.approx(stats.kendalltau([-e + (0.5 if e == 4 else 0) for e in late], late).statistic)
    assert ent["pearson_late_signed"] == pytest.approx(-ent["pearson_late"])
    assert ent["pick"] == "f/r/e7" and ent["best"] == "f/r/e7"
    assert out["late_from_epoch"] == 3.5 and out["alerts"] == {"collapse": [], "non_finite": [], "reasons": {}}
    with pytest.raises(ValueError, match="late_fraction must be in"):
        analyze_rows(rows, late_fraction=1.5)


def test_alerts_collapse_and_non_finite():
    from ssl_eval.analysis import alert_tag, alerts

    rows = [
        {"id": "f/r/a", "run": "r", "epoch": 0, "flags": ["collapsed"],  # geometry's norm_std line alone: no alert
         "metrics": {"rankme_centered": 40.0, "norm_std": 0.008}},
        {"id": "f/r/c", "run": "r", "epoch": 1, "flags": [], "metrics": {"rankme_centered": 1.2}},
        {"id": "f/r/d", "run": "r", "epoch": 2, "flags": ["non_finite"], "metrics": {"rankme_centered": float("nan")}},
    ]
    found = alerts(rows)
    assert found["collapse"] == ["f/r/c"] and found["non_finite"] == ["f/r/d"]
    assert found["reasons"]["f/r/c"].startswith("centered RankMe 1.20 < 2")
    assert alert_tag(found) == "collapse,non_finite"
    assert alerts(rows, rank_floor=1.0)["collapse"] == []
    assert alert_tag(alerts(rows[:1])) == "none"


def test_bootstrap_skips_kendall_above_its_size_limit(monkeypatch):
    import ssl_eval.analysis.correlation as analysis

    monkeypatch.setattr(analysis, "KENDALL_BOOTSTRAP_MAX_N", 5)
    x = [float(v) for v in range(8)]
    ci = analysis.bootstrap_ci(x, [v + (v % 3) for v in x])
    assert math.isnan(ci["kendall_ci_low"]) and not math.isnan(ci["spearman_ci_low"])


def test_pooled_tables_raw_and_within_family_ranks():
    # family a: rankme tracks the probe; family b: the same inside, but shifted so that the
    # pooled raw values run against the probe
    rows = [{"id": f"{f}/r/e{e}", "family": f, "run": "r", "epoch": e, "flags": [],
             "metrics": {"rankme": float(e) + shift}, "probe": {"linear_acc": 0.1 * e + acc}}
            for f, shift, acc in (("a", 0.0, 0.5), ("b", 10.0, 0.0)) for e in range(5)]
    out = pooled_tables(rows, late_fraction=0.5)
    x = [r["metrics"]["rankme"] for r in rows]
    y = [r["probe"]["linear_acc"] for r in rows]
    assert out["raw"]["rankme"]["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert out["raw"]["rankme"]["spearman"] < 0
    assert out["within_family_rank"]["rankme"]["spearman"] == pytest.approx(1.0)
    assert "regret" in out["raw"]["rankme"] and "regret" not in out["within_family_rank"]["rankme"]
    with pytest.raises(ValueError, match="need a 'family' key"):
        pooled_tables([{k: v for k, v in r.items() if k != "family"} for r in rows])

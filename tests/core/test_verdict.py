"""The verdict's rules on hand-made trajectories: rising, flat, falling, noisy, too short."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ssl_eval.analysis import analyze_rows
from ssl_eval.config import VerdictConfig
from ssl_eval.verdict import family_verdict, family_verdicts
from ssl_eval.verdict.progress import keep_index
from ssl_eval.verdict.trend import DEGRADING, IMPROVING, PLATEAUED, describe, trend
from ssl_eval.verdict.trust import classify


def make_rows(family: str, run: str, metrics: dict[str, np.ndarray], probe: np.ndarray | None, method: str = "simclr"):
    n = len(next(iter(metrics.values())))
    return [{"id": f"{family}/{run}/epoch={e:02d}.ckpt", "run": run, "epoch": e, "method": method,
             "metrics": {name: float(v[e]) for name, v in metrics.items()},
             "probe": {} if probe is None else {"linear_acc": float(probe[e])}, "flags": []} for e in range(n)]


def verdict_of(rows, config=VerdictConfig()):
    return family_verdict("fam", rows, analyze_rows(rows), config=config)


EPOCHS = np.arange(16)
RISING = 10 + 2.0 * EPOCHS                      # keeps rising to the end
SATURATING = 10 + 30 * (1 - np.exp(-EPOCHS / 2))  # flat after about epoch 8
FALLING_LATE = np.where(EPOCHS < 8, 10 + 3.0 * EPOCHS, 34 - 2.0 * (EPOCHS - 8))


def noise(seed: int, scale: float, n: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, n)


def test_trend_matches_scipy_theil_sen_and_mann_kendall():
    y = np.array([1.0, 2.5, 2.0, 4.0, 5.5, 5.0])
    e = np.arange(10, 16)
    t = trend("rankme", e, y, history=y, higher_is_better=True, alpha=0.1, min_change=0.05)
    fit, test = stats.theilslopes(y, e), stats.kendalltau(e, y)
    assert t.slope == pytest.approx(fit.slope) and t.p == pytest.approx(test.pvalue)
    assert t.change == pytest.approx(fit.slope * 5) and t.state == IMPROVING
    # lower is better: the same rise is a degradation
    assert trend("entropy_knn", e, y, history=y, higher_is_better=False, alpha=0.1, min_change=0.05).state == DEGRADING
    # a monotone rise that is tiny next to the run's earlier range is a plateau
    small = trend("rankme", e, 100 + 0.01 * np.arange(6), history=[0.0, 100.06], higher_is_better=True,
                  alpha=0.1, min_change=0.05)
    assert small is not None
    assert small.p < 0.01 and small.state == PLATEAUED and "too little to count" in describe(small)
    assert trend("rankme", [0, 1], [1.0, 2.0], history=[1.0, 2.0], higher_is_better=True, alpha=0.1, min_change=0.05) is None


def test_describe_says_the_evidence():
    y = 10 * 1.02 ** np.arange(4)
    t = trend("rankme", [5, 6, 7, 8], y, history=y, higher_is_better=True, alpha=0.1, min_change=0.05)
    assert t is not None
    assert describe(t).startswith("rankme rose 6.1% over the last 4 checkpoints (epochs 5-8, p = 0.08")


def test_rising_trajectory_is_improving_and_not_stopped():
    rows = (make_rows("fam", "run-0", {"rankme": RISING + noise(0, 0.5)}, 0.8 + 0.005 * EPOCHS + noise(1, 0.001))
            + make_rows("fam", "run-1", {"rankme": RISING + noise(2, 0.5)}, 0.8 + 0.005 * EPOCHS + noise(3, 0.001)))
    v = verdict_of(rows)
    assert v["progress"]["state"] == "improving"
    assert v["trust"]["rankme"]["class"] == "trusted"
    assert v["signals"] == {"names": ["rankme"], "source": "trusted"}
    assert all(s["epoch"] is None for s in v["stop"].values())
    assert v["keep"]["epoch"] == 15
    assert v["summary"].startswith("Still improving in 2 of 2 runs: in run-0, rankme rose")
    assert all(r["agreement"] == 1.0 and r["fraction_saved"] == 0.0 for r in v["retrospective"].values())


def test_saturating_trajectory_plateaus_and_stops_with_little_loss():
    probe = 0.80 + 0.15 * (1 - np.exp(-EPOCHS / 2))
    rows = make_rows("fam", "run-0", {"rankme": SATURATING + noise(4, 0.05)}, probe + noise(5, 0.0005))
    v = verdict_of(rows, VerdictConfig(stop_patience=4))  # 16 checkpoints: the default patience (8) is half of them
    assert v["progress"]["state"] == "plateaued"
    assert v["summary"].startswith("No clear trend") and "does not rule out slow gains" in v["summary"]
    stop = v["stop"]["run-0"]["epoch"]
    assert stop is not None and 6 <= stop < 15
    retro = v["retrospective"]["run-0"]
    assert retro["stop_epoch"] == stop and retro["points_lost"] < 0.5
    assert retro["fraction_saved"] == pytest.approx((15 - stop) / 16)
    assert retro["agreement"] >= 0.8
    assert "would have stopped run-0 at epoch" in v["summary"]


def test_falling_trajectory_is_degrading_and_keeps_the_peak():
    probe = 0.8 + 0.01 * np.where(EPOCHS < 8, EPOCHS, 16 - EPOCHS)
    rows = make_rows("fam", "run-0", {"rankme": FALLING_LATE + noise(6, 0.2)}, probe)
    v = verdict_of(rows)
    assert v["progress"]["state"] == "degrading" and v["summary"].startswith("Getting worse")
    assert v["keep"]["epoch"] in (7, 8, 9)
    assert v["keep"]["regret"] <= 0.01 + 1e-12


def test_noise_is_a_plateau_not_a_trend():
    # pure noise around a level, many seeds: the rule must not cry improving/degrading often
    calls = []
    for seed in range(40):
        rows = make_rows("fam", "run-0", {"rankme": 20 + noise(seed, 1.0)}, None)
        calls.append(verdict_of(rows)["progress"]["state"])
    false_alarms = sum(c != "plateaued" for c in calls)
    assert false_alarms <= 6  # alpha = 0.1 two-sided on 6 points: about 10% expected


def test_too_short_is_insufficient_and_says_how_many():
    rows = make_rows("fam", "run-0", {"rankme": np.array([11.0, 12.0, 13.0])}, np.array([0.5, 0.6, 0.7]))
    v = verdict_of(rows)
    assert v["progress"]["state"] == "insufficient"
    assert "3 checkpoints so far; the trend test needs 6" in v["progress"]["text"]
    assert v["trust"]["rankme"]["class"] == "unknown"
    assert v["trust"]["rankme"]["reason"] == "3 checkpoints with a probe; 8 needed to judge"
    assert v["stop"]["run-0"]["epoch"] is None


def _corr(rho, low, high, *, n=12, late=(math.nan, math.nan, math.nan), n_late=0, hib=True):
    s = 1.0 if hib else -1.0
    return {"n": n, "higher_is_better": hib, "spearman_signed": rho, "spearman_ci_low": s * low, "spearman_ci_high": s * high,
            "n_late": n_late, "spearman_late_signed": late[0], "spearman_late_ci_low": s * late[1],
            "spearman_late_ci_high": s * late[2]}


@pytest.mark.parametrize("entry, expected, words", [
    (_corr(0.8, 0.4, 0.95), "trusted", "tracks the probe"),
    (_corr(0.3, 0.05, 0.6), "weak", "weakly"),
    (_corr(0.2, -0.3, 0.6), "weak", "includes 0"),
    (_corr(-0.8, -0.95, -0.4), "misleading", "against the probe"),
    # lower-is-better: the raw interval is flipped before it is read
    (_corr(-0.8, -0.95, -0.4, hib=False), "misleading", "against the probe"),
    (_corr(0.8, 0.4, 0.95, hib=False), "trusted", "tracks the probe"),
    # with late_priority (the entries with a late window below) the late window decides when it
    # is decisive (entropy: unstable early, stable late)
    (_corr(0.1, -0.4, 0.5, late=(0.9, 0.6, 1.0), n_late=6), "trusted", "late in training"),
    (_corr(0.8, 0.4, 0.95, late=(-0.9, -1.0, -0.5), n_late=6), "misleading", "late in training"),
    (_corr(0.8, 0.4, 0.95, late=(-0.2, -0.8, 0.5), n_late=6), "weak", "not late in training"),
    (_corr(0.8, 0.4, 0.95, n=5), "unknown", "5 checkpoints with a probe; 8 needed"),
    (_corr(math.nan, math.nan, math.nan), "unknown", "constant"),
])
def test_trust_rule(entry, expected, words):
    t = classify("m", entry, VerdictConfig(late_priority=entry["n_late"] > 0))
    assert t.klass == expected and words in t.reason


def test_the_late_window_decides_nothing_by_default():
    """The trajectory benchmark found late-window correlations to be noise (docs/verdicts.md): by default the whole run decides."""
    assert classify("m", _corr(0.1, -0.4, 0.5, late=(0.9, 0.6, 1.0), n_late=6)).klass == "weak"
    assert classify("m", _corr(0.8, 0.4, 0.95, late=(-0.9, -1.0, -0.5), n_late=6)).klass == "trusted"


def test_trust_thresholds_are_configurable():
    entry = _corr(0.45, 0.1, 0.7)
    assert classify("m", entry).klass == "weak"
    assert classify("m", entry, VerdictConfig(trust_min_rho=0.4)).klass == "trusted"
    assert classify("m", _corr(0.8, 0.4, 0.95, n=5), VerdictConfig(trust_min_checkpoints=5)).klass == "trusted"


def test_keep_is_the_rank_aggregate_and_skips_collapsed():
    rows = make_rows("fam", "run-0", {"rankme": np.array([1.0, 5.0, 4.0, 3.0]),
                                      "entropy_knn": np.array([9.0, 7.0, 6.0, 8.0])}, None)
    # rankme ranks (higher better) 0, 1, 2/3, 1/3; entropy (lower better) 0, 1/3, 1, 2/3
    assert keep_index(rows, {"rankme": True, "entropy_knn": False}, {}) == 2
    assert keep_index(rows, {"rankme": True}, {}) == 1
    assert keep_index(rows, {"rankme": True}, {rows[1]["id"]: "rank 1"}) == 2
    assert keep_index(rows, {"rankme": True}, {r["id"]: "x" for r in rows}) is None


def test_family_without_labels_borrows_trust_same_method_first_and_says_so():
    calibrated = (make_rows("mnist-simclr", "run-0", {"rankme": RISING + noise(7, 0.3)}, 0.8 + 0.005 * EPOCHS)
                  + make_rows("mnist-simclr", "run-1", {"rankme": RISING + noise(8, 0.3)}, 0.8 + 0.005 * EPOCHS))
    other = make_rows("mnist-byol", "run-0", {"rankme": 40 - EPOCHS}, 0.8 + 0.005 * EPOCHS, method="byol")
    unlabelled = make_rows("new-simclr", "run-0", {"rankme": RISING + noise(9, 0.3)}, None)
    inputs = {f: (rows, analyze_rows(rows)) for f, rows in
              {"mnist-simclr": calibrated, "mnist-byol": other, "new-simclr": unlabelled}.items()}
    v = family_verdicts(inputs)["new-simclr"]
    assert v["trust"]["rankme"]["class"] == "trusted"
    assert v["trust_source"] == "borrowed from mnist-simclr (same method, simclr)"
    assert "borrowed from mnist-simclr" in v["summary"] and v["retrospective"] is None
    assert v["progress"]["state"] == "improving" and v["keep"]["checkpoint"] == "new-simclr/run-0/epoch=15.ckpt"
    # a method with no calibrated family: the pooled analysis on within-family ranks
    lone = make_rows("new-vicreg", "run-0", {"rankme": RISING}, None, method="vicreg")
    inputs["new-vicreg"] = (lone, analyze_rows(lone))
    pooled = {"rankme": _corr(0.7, 0.5, 0.85, n=48)}
    w = family_verdicts(inputs, pooled, only=["new-vicreg"])["new-vicreg"]
    assert w["trust_source"].startswith("borrowed from the pooled analysis of mnist-byol, mnist-simclr")
    assert w["trust"]["rankme"]["class"] == "trusted"


def test_nothing_to_borrow_reads_the_default_signal():
    rows = make_rows("fam", "run-0", {"rankme": RISING, "nesum": RISING}, None)
    v = family_verdicts({"fam": (rows, analyze_rows(rows))})["fam"]
    assert v["trust"] == {} and v["signals"] == {"names": ["rankme"], "source": "the default signal"}
    assert "No labels to judge trust and none to borrow; reading rankme (the default signal)." in v["summary"]
    v2 = family_verdict("fam", rows, analyze_rows(rows), config=VerdictConfig(default_signals=("nesum",)))
    assert v2["signals"]["names"] == ["nesum"]


# ---- the "best" stop and keep (stop_rule = "best"): hand-made trajectories, causal by construction

BEST = VerdictConfig(stop_rule="best", stop_patience=4, smooth=3, min_epoch=0, min_change=0.05)
E30 = np.arange(31)


def _best_of(signal: np.ndarray, config: VerdictConfig = BEST, flags_at: int | None = None):
    from ssl_eval.verdict.stopping import best_stop

    rows = make_rows("fam", "run-0", {"rankme": signal}, None)
    collapse = {} if flags_at is None else {rows[flags_at]["id"]: "collapse"}
    return best_stop(rows, {"rankme": True}, config, collapse)


def test_best_rule_never_stops_a_run_that_keeps_improving_and_keeps_its_last_checkpoint():
    late_peak = 10 + 0.5 * E30 + noise(7, 0.1, 31)  # still rising at epoch 30
    assert _best_of(late_peak) == (None, 30)


def test_best_rule_stops_after_an_early_peak_and_keeps_the_peak_not_the_start():
    early_peak = np.where(E30 < 8, 10 + 3.0 * E30, 34 - 1.0 * (E30 - 8)) + noise(8, 0.3, 31)
    stop, keep = _best_of(early_peak)
    assert stop is not None and 8 + 4 <= stop <= 8 + 6  # patience 4 after the smoothed peak
    assert 6 <= keep <= 9
    # causal: the decision at the stop is the same when later checkpoints do not exist
    assert _best_of(early_peak[:stop + 1]) == (stop, keep)


def test_best_rule_stops_at_a_collapse_and_keeps_a_healthy_checkpoint_before_it():
    rising = 10 + 0.5 * E30
    stop, keep = _best_of(rising, flags_at=12)
    assert stop == 12 and keep == 11


def test_best_rule_on_a_noisy_plateau_keeps_a_trained_checkpoint_and_waits_for_min_epoch():
    plateau = np.minimum(E30, 5) * 2.0 + noise(9, 0.4, 31)  # rises for 5 epochs, then noise
    stop, keep = _best_of(plateau)
    assert stop is not None and stop <= 15 and keep >= 4  # never the untrained start
    later = _best_of(plateau, BEST.model_copy(update={"min_epoch": 20}))
    assert later[0] == 20 and later[1] >= 4


def test_best_rule_on_a_run_that_never_improves_keeps_the_start_and_on_a_short_run_waits():
    assert _best_of(20 - 0.5 * E30)[1] == 0  # nothing improved: the untrained checkpoint is the best
    short = _best_of(10 + np.arange(4.0))
    assert short == (None, 3)  # four checkpoints, each a new best: nothing to stop on


def test_best_rule_is_the_verdicts_default_and_its_stop_is_said_in_words():
    rows = make_rows("fam", "run-0", {"rankme": np.where(E30 < 8, 10 + 3.0 * E30, 34 - 1.0 * (E30 - 8))}, None)
    v = verdict_of(rows, BEST)
    assert v["stop"]["run-0"]["epoch"] is not None
    assert "no new best of the signals in 4 checkpoints" in v["summary"]
    assert v["keep"]["epoch"] in (7, 8, 9)
    from ssl_eval.results.answers import VerdictRecord
    from ssl_eval.verdict.answers import stop_line

    assert stop_line(VerdictRecord.model_validate(v)).startswith("patience 4: run-0 at epoch")  # the rule's own patience, not the trend rule's


def test_within_run_trust_sees_through_a_shift_between_runs():
    """Within-run trust sees through a level shift between runs that pooling mistakes for agreement.

    Three runs whose metric falls as the probe rises inside each run, but whose levels move together
    across runs: pooled over checkpoints they agree, inside a run they disagree. The within-run
    reading (the default) calls the metric misleading; the pooled one trusted.
    """
    from ssl_eval.analysis.correlation import within_run_spearman

    rows = []
    for k, level in enumerate((0.0, 10.0, 20.0)):
        probe = 0.5 + 0.02 * level + 0.001 * np.arange(12)
        rows += make_rows("fam", f"run-{k}", {"rankme": level + 5 - 0.1 * np.arange(12)}, probe)
    c = analyze_rows(rows)["metrics"]["rankme"]
    expected = np.mean([stats.spearmanr(np.arange(12), -np.arange(12)).statistic] * 3)
    assert c["within_run_spearman_signed"] == pytest.approx(expected) and c["within_run_n_runs"] == 3
    assert c["spearman_signed"] > 0.5
    assert classify("rankme", c, VerdictConfig()).klass == "misleading"
    assert classify("rankme", c, VerdictConfig(trust_basis="pooled")).klass == "trusted"
    # the interval resamples whole runs: three identical runs leave no spread
    one = within_run_spearman([(list(range(8)), [0, 2, 1, 3, 4, 6, 5, 7])] * 3)
    ref = stats.spearmanr(range(8), [0, 2, 1, 3, 4, 6, 5, 7]).statistic
    assert one["rho"] == pytest.approx(ref) and one["ci_low"] == pytest.approx(ref) == one["ci_high"]
    assert math.isnan(within_run_spearman([(list(range(8)), list(range(8)))])["ci_low"])  # one run: no interval


def test_the_verdict_says_what_the_shipped_validation_showed_for_its_method():
    from ssl_eval.verdict.evidence import belief, shipped

    evidence = shipped()
    assert {"simclr", "dino"} <= set(evidence)  # written by benchmarks/verdict.py --evidence
    simclr = belief("simclr")
    assert simclr["validated"] and simclr["beats_fixed"] == evidence["simclr"]["beats_fixed"]
    assert f"{evidence['simclr']['verdict_median_lost']:.1f} probe points lost" in simclr["text"]
    if not evidence["simclr"]["beats_fixed"]:
        assert "has not been shown to beat a fixed schedule" in simclr["text"] and "suggestions" in simclr["text"]
    assert belief("swav")["validated"] is False and "not been validated on swav runs" in belief("swav")["text"]
    rows = make_rows("fam", "run-0", {"rankme": RISING}, None, method="swav")
    v = verdict_of(rows)
    assert v["belief"]["validated"] is False and v["summary"].endswith(belief("swav")["text"])

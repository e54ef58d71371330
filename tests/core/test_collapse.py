"""Collapse alerts: an untrained encoder with a good probe is not collapsed; a collapsed one is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ssl_eval.analysis.collapse import collapse_reasons
from ssl_eval.metrics import compute_group
from ssl_eval.sources.models import DemoCNN


def measured_row(cid: str, Z: np.ndarray, *, run: str = "run-0", epoch: int = 0) -> dict:
    """A record row as the measure step writes it: every group's values and flags merged."""
    values: dict[str, float] = {}
    flags: set[str] = set()
    for group in ("entropy", "spectral", "geometry"):
        result = compute_group(group, Z)
        values.update(result.values)
        flags.update(result.flags)
    return {"id": cid, "run": run, "epoch": epoch, "metrics": values, "flags": sorted(flags)}


def random_relu_features(seed: int, n: int = 400, d: int = 128) -> np.ndarray:
    """What an untrained ReLU network gives: non-negative features sharing a large mean.

    So the l2-normalised rows nearly coincide (norm_std under 0.1/sqrt(D)) though they differ in
    many directions.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 64))
    return np.maximum(X @ rng.normal(size=(64, d)) * 0.02 + 3.0 + rng.normal(size=d) * 0.1, 0.0)


def test_untrained_encoders_raise_no_alert_though_geometry_flags_them():
    Z = random_relu_features(0)
    row = measured_row("f/run-0/epoch=00", Z)
    assert "collapsed" in row["flags"]  # the old alert fired on this flag alone
    assert row["metrics"]["rankme_centered"] > 30
    assert collapse_reasons([row]) == {}


@pytest.mark.slow
def test_untrained_demo_cnn_on_digits_is_not_collapsed_and_probes_well():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    torch.manual_seed(0)
    with torch.no_grad():
        Z = DemoCNN(in_channels=1).eval()(torch.tensor(X / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)).numpy()
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(Z[:1000], y[:1000]).score(Z[1000:], y[1000:])
    assert probe > 0.85
    assert collapse_reasons([measured_row("f/run-0/epoch=00", Z)]) == {}


def test_identical_outputs_alert_with_their_reason():
    Z = np.tile(np.linspace(0.1, 1.0, 16), (100, 1))
    reasons = collapse_reasons([measured_row("f/run-0/epoch=03", Z, epoch=3)])
    assert reasons == {"f/run-0/epoch=03": "all embeddings are identical: every image gets the same output"}


def test_rank_one_outputs_alert():
    t = np.random.default_rng(1).uniform(1.0, 2.0, size=(200, 1))
    Z = t @ np.random.default_rng(2).normal(size=(1, 32))  # every image on one line through 0
    row = measured_row("f/run-0/epoch=05", Z, epoch=5)
    assert row["metrics"]["rankme_centered"] == pytest.approx(1.0, abs=0.01)
    assert collapse_reasons([row])["f/run-0/epoch=05"].startswith("centered RankMe 1.00 < 2")


def test_nearly_identical_outputs_alert_by_the_norm_std_floor():
    rng = np.random.default_rng(3)
    Z = np.ones((200, 64)) + 1e-7 * rng.normal(size=(200, 64))  # rounding noise spans every direction
    row = measured_row("f/run-0/epoch=00", Z)
    assert row["metrics"]["rankme_centered"] > 30  # the rank floor cannot see it
    assert collapse_reasons([row])["f/run-0/epoch=00"].startswith("norm_std")


def test_a_fall_against_the_runs_own_history_alerts():
    rows = [{"id": f"f/run-0/e{e}", "run": "run-0", "epoch": e, "flags": [],
             "metrics": {"rankme_centered": 40.0, "norm_std": s}} for e, s in enumerate([0.008, 0.03, 0.028, 0.004])]
    rows.append({"id": "f/run-1/e0", "run": "run-1", "epoch": 0, "flags": [],
                 "metrics": {"rankme_centered": 40.0, "norm_std": 0.004}})  # another run: no history yet
    reasons = collapse_reasons(rows)
    assert list(reasons) == ["f/run-0/e3"]
    assert reasons["f/run-0/e3"] == "norm_std fell to 0.004, 13% of this run's earlier best (0.03 at epoch 1)"
    assert collapse_reasons(rows, history_fraction=0.1) == {}


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError, match="rank_floor must be >= 1"):
        collapse_reasons([], rank_floor=0.5)
    with pytest.raises(ValueError, match="history_fraction must be in"):
        collapse_reasons([], history_fraction=1.5)

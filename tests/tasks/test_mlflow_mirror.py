"""The MLflow mirror on a sqlite store in tmp_path (no Prefect).

Alert tags, figures, names, params, older mirrors brought up to date, and one current value per step
in every series whatever happens to the store.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from mlflow.entities import Metric, ViewType
from mlflow.tracking import MlflowClient

from ssl_eval.analysis import family_rows, store_family_analysis, stored_analysis
from ssl_eval.config import Config, DataConfig, FamilyConfig, VerdictConfig
from ssl_eval.integrations.mlflow_figures import FIGURES_TAG, draw_figures
from ssl_eval.integrations.mlflow_history import ANALYSIS_TAG
from ssl_eval.integrations.mlflow_mirror import (
    CORR_STATS,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    KEY_TAG,
    SUMMARY_DESCRIPTION,
    SUMMARY_EXPERIMENT,
    sync_family,
)
from ssl_eval.integrations.mlflow_tags import ALERT_TAG, DESCRIPTION_TAG, STALE_TAG
from ssl_eval.verdict.records import store_verdict
from tests.helpers import mlflow_series, synthetic_workspace


@pytest.mark.slow
def test_alert_tags_and_figures_on_the_correlations_run(tmp_path, mlflow_store):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=2, collapse_at="simsiam/run-1/epoch=02")
    analysis = store_family_analysis(ws, "simsiam")
    verdict = store_verdict(ws, "simsiam", analysis, Config(verdict=VerdictConfig(window=3))).answers()
    uri = mlflow_store(tmp_path / "mlflow.db")
    first = sync_family(ws, "simsiam", tracking_uri=uri)
    client = MlflowClient(uri)

    def run(family, name):
        exp = client.get_experiment_by_name(f"ssl-eval/{family}").experiment_id
        return client.search_runs([exp], filter_string=f"attributes.run_name = '{name}'")[0]

    assert run("simsiam", "simsiam/run-1").data.tags[ALERT_TAG] == "collapse"
    assert run("simsiam", "simsiam/run-0").data.tags[ALERT_TAG] == "none"
    corr = run("simsiam", "simsiam/correlations")
    assert corr.data.tags[ALERT_TAG] == "collapse" and corr.data.tags[STALE_TAG] == "no"
    # the verdict, as tags: the family's on the correlations run, each run's own on its run
    assert corr.data.tags["ssl_eval.verdict.summary"] == verdict["summary"]
    assert corr.data.tags["ssl_eval.verdict.progress"] == verdict["progress"]["state"]
    assert corr.data.tags["ssl_eval.verdict.keep"] == verdict["keep"]["checkpoint"]
    # the verdict is what a person reads first: the experiment's description (the experiments
    # list), the correlations and summary runs' descriptions (the top of their pages)
    assert client.get_experiment_by_name("ssl-eval/simsiam").tags[DESCRIPTION_TAG] == verdict["summary"]
    assert corr.data.tags[DESCRIPTION_TAG] == verdict["summary"]
    summary_exp = client.get_experiment_by_name(SUMMARY_EXPERIMENT)
    assert summary_exp.tags[DESCRIPTION_TAG] == SUMMARY_DESCRIPTION
    (summary_run,) = client.search_runs([summary_exp.experiment_id])
    assert summary_run.data.tags[DESCRIPTION_TAG] == verdict["summary"]
    assert DESCRIPTION_TAG not in run("simsiam", "simsiam/run-0").data.tags  # a training run has its own verdict tags
    assert run("simsiam", "simsiam/run-1").data.tags["ssl_eval.verdict.stop_epoch"] == "2"  # the collapse stops it
    assert run("simsiam", "simsiam/run-0").data.tags["ssl_eval.verdict.progress"] == verdict["progress"]["runs"]["run-0"]["state"]
    assert {"corr/entropy_gaussian/spearman_signed", "corr/silhouette/spearman_ci_low",
            "corr/rankme/kendall_late"} <= set(corr.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(corr.info.run_id, "figures")}
    assert artifacts == {"figures/trajectories.png", "figures/metric_vs_probe.png", "figures/signed_correlations.png"}
    assert corr.data.tags[FIGURES_TAG] == ws.records.get("simsiam", "correlations")["inputs_digest"]
    # idempotent: nothing new is logged, the figures are not redrawn, and no metric history is
    # read back (one request per key: the bulk of a sync's time before the points digest)
    reads = []
    real_history = MlflowClient.get_metric_history

    def counting(self: MlflowClient, *a: Any, **k: Any) -> Any:
        reads.append(a)
        return real_history(self, *a, **k)

    MlflowClient.get_metric_history = counting
    try:
        again = sync_family(ws, "simsiam", tracking_uri=uri)
    finally:
        MlflowClient.get_metric_history = real_history
    assert first.points_logged > 0 and again.points_logged == 0
    assert reads == []


def test_a_sync_without_figures_leaves_them_to_draw_figures_which_draws_each_once(tmp_path, mlflow_store):
    """``ssl-eval evaluate`` syncs with figures=False; ``ssl-eval ui`` then draws the missing figures, and only those."""
    ws = synthetic_workspace(tmp_path / "w", epochs=2, runs=1)
    for family in ("simclr", "simsiam"):
        store_family_analysis(ws, family)
    uri = mlflow_store(tmp_path / "mlflow.db")
    sync_family(ws, "simclr", tracking_uri=uri, figures=False)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("ssl-eval/simclr").experiment_id
    (corr,) = client.search_runs([exp], filter_string="attributes.run_name = 'simclr/correlations'")
    assert client.list_artifacts(corr.info.run_id, "figures") == [] and FIGURES_TAG not in corr.data.tags
    assert corr.data.metrics  # the answers are there
    assert draw_figures(ws, uri) == ["simclr"]  # simsiam is not mirrored: nothing to draw on
    assert len(client.list_artifacts(corr.info.run_id, "figures")) == 3
    assert client.get_run(corr.info.run_id).data.tags[FIGURES_TAG] == ws.records.get("simclr", "correlations")["inputs_digest"]
    assert draw_figures(ws, uri) == []  # current: not drawn again


def _all_runs(client):
    return {(e.name, r.info.run_name): r for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id])}


@pytest.mark.slow
def test_classic_view_unique_run_names_params_and_a_lean_summary(tmp_path, mlflow_store):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=2)
    for family in ("simclr", "simsiam"):
        store_family_analysis(ws, family)
    uri = mlflow_store(tmp_path / "mlflow.db")
    config = Config(data=DataConfig(name="digits", n_eval=200), families={"simclr": FamilyConfig(arch="democnn")})
    for family in ("simclr", "simsiam"):
        sync_family(ws, family, tracking_uri=uri, config=config)
    client = MlflowClient(uri)
    experiments = [e for e in client.search_experiments() if e.name.startswith("ssl-eval/")]
    assert len(experiments) == 3 and all(e.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND for e in experiments)
    runs = _all_runs(client)
    names = [name for _, name in runs]
    assert len(names) == len(set(names))  # unique across experiments, so a cross-family comparison can tell them apart
    assert {"simclr/run-0", "simclr/run-1", "simclr/correlations", "simsiam/run-0", "simclr/summary", "simsiam/summary"} <= set(names)
    params = runs[("ssl-eval/simclr", "simclr/run-0")].data.params
    assert params["data.name"] == "digits" and params["data.n_eval"] == "200" and params["data.n_probe_train"] == "5000"
    assert params["metrics.k"] == "auto" and params["family.arch"] == "democnn" and params["checkpoint.arch"] == "democnn"
    assert {"data.random_state", "metrics.random_state", "probe.random_state"} <= set(params)
    summary = runs[(SUMMARY_EXPERIMENT, "simclr/summary")].data.metrics
    assert not any(k.startswith("corr/") for k in summary) and len(summary) <= 4 + 20
    assert summary["checkpoints"] == 8 and 0 < summary["probe/first_linear_acc"] <= summary["probe/best_linear_acc"] <= 1
    corr = ws.records.get("simclr", "correlations")["metrics"]["entropy_gaussian"]
    assert summary["signed_spearman/entropy_gaussian"] == corr["spearman_signed"]


@pytest.mark.slow
def test_older_mirrors_are_brought_up_to_date(tmp_path, mlflow_store):
    """Older mirrors are brought up to date.

    Experiments without the kind tag, runs named 'run-0', a summary run flooded with corr/* metrics,
    and a setting changed since the params were logged.
    """
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1)
    store_family_analysis(ws, "simclr")
    uri = mlflow_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    exp = client.create_experiment("ssl-eval/simclr", artifact_location=(tmp_path / "a").as_uri())
    old = client.create_run(exp, run_name="run-0", tags={KEY_TAG: "simclr/run-0"}).info.run_id
    client.log_param(old, "data.n_eval", "100")
    summary_exp = client.create_experiment(SUMMARY_EXPERIMENT, artifact_location=(tmp_path / "s").as_uri())
    flooded = client.create_run(summary_exp, run_name="simclr", tags={KEY_TAG: "summary/simclr"}).info.run_id
    client.log_metric(flooded, "corr/rankme/spearman", 0.5)
    sync_family(ws, "simclr", tracking_uri=uri, config=Config(data=DataConfig(n_eval=200)))
    assert client.get_experiment(exp).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    run = client.get_run(old)
    assert run.info.run_name == "simclr/run-0" and run.data.params["data.n_eval"] == "100"
    assert run.data.tags["ssl_eval.now.data.n_eval"] == "200"
    assert client.get_run(flooded).info.lifecycle_stage == "deleted"
    (fresh,) = client.search_runs([summary_exp])
    assert fresh.info.run_name == "simclr/summary" and not any(k.startswith("corr/") for k in fresh.data.metrics)
    # the mirror shows what is stored: here an analysis without its verdict, which it says is stale
    (corr,) = client.search_runs([exp], filter_string="attributes.run_name = 'simclr/correlations'")
    assert corr.data.tags[STALE_TAG] == "stale, run `ssl-eval evaluate` (no verdict stored)"


# --- one value per step, whatever happens to the store (#26 item 3)


def _same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12)


def _expected_training_points(ws, family) -> dict[tuple[str, int], float]:
    """(key, epoch) -> value from the records, one per key and epoch.

    A checkpoint still in the store wins over a deleted one at the same epoch, then the one whose id
    sorts last.
    """
    out = {}
    for row in sorted(family_rows(ws, family, include_gone=True), key=lambda r: (not r.get("gone"), r["id"])):
        for name, value in row["metrics"].items():
            out[("reference" if name == "ami_ground_truth" else "label_free") + f"/{name}", row["epoch"]] = value
        out.update({(f"probe/{name}", row["epoch"]): value for name, value in row["probe"].items()})
    return out


def _assert_one_current_value_per_step(client, ws, family, uri):
    """Assert that no series holds two points at one step and every run shows the current values.

    The training run holds exactly the records' values; the correlations and summary runs show the
    current analysis (NaN: undefined now); a second sync logs nothing; no active run name is held
    twice.
    """
    series = mlflow_series(client)
    doubled = [name for name, points in series.items() if len({s for s, _ in points}) != len(points)]
    assert doubled == []
    runs = [run.info.run_name for e in client.search_experiments() for run in client.search_runs([e.experiment_id])]
    assert len(runs) == len(set(runs))
    held = {(key, step): value for (run, key), points in series.items() if run == f"{family}/run-0" for step, value in points}
    expected = _expected_training_points(ws, family)
    assert sorted(held) == sorted(expected) and all(_same(held[k], v) for k, v in expected.items())
    analysis = stored_analysis(ws, family)
    corr = {f"corr/{m}/{s}": c[s] for m, c in analysis.metrics.items() for s in CORR_STATS if c.get(s) is not None}
    shown = {key: points[-1][1] for (run, key), points in series.items() if run == f"{family}/correlations"}
    assert set(corr) <= set(shown) and all(_same(shown[k], corr.get(k, math.nan)) for k in shown)
    summary = {key: points[-1][1] for (run, key), points in series.items() if run == f"{family}/summary"}
    live = [r for r in family_rows(ws, family) if "linear_acc" in r["probe"]]
    assert summary["checkpoints"] == len(family_rows(ws, family))
    assert summary["probe/best_linear_acc"] == max(r["probe"]["linear_acc"] for r in live)
    signed = {f"signed_spearman/{m}": c["spearman_signed"] for m, c in analysis.metrics.items() if c.get("spearman_signed") is not None}
    assert all(_same(v, signed.get(k, math.nan)) for k, v in summary.items() if k.startswith("signed_spearman/"))
    assert sync_family(ws, family, tracking_uri=uri).points_logged == 0


def _replace(ws, checkpoint_id, *, scale, epoch=None, fingerprint=None):
    """Replace ``checkpoint_id``'s file by other content, as the embed and measure steps then record it.

    A new fingerprint, every value scaled (and its epoch moved, for a name without an epoch).
    """
    checkpoint = ws.records.get(checkpoint_id, "checkpoint")
    fp = fingerprint or checkpoint["fingerprint"] + "+"
    ws.records.put(checkpoint_id, "checkpoint", {**checkpoint, "fingerprint": fp, **({} if epoch is None else {"epoch": epoch})})
    for part in [*ws.records.parts(checkpoint_id, "metrics-"), "probe"]:
        record = ws.records.get(checkpoint_id, part)
        ws.records.put(checkpoint_id, part, {**record, "fingerprint": fp, "values": {k: v * scale for k, v in record["values"].items()}})


@pytest.mark.slow
def test_no_series_ever_holds_two_points_at_one_step_and_the_values_shown_are_current(tmp_path, mlflow_store, no_mlflow_figures):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1)
    uri = mlflow_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    # a correlations run of an older layout: every re-analysis at step 0, beside the old point
    exp = client.create_experiment("ssl-eval/simclr", artifact_location=(tmp_path / "a").as_uri())
    old = client.create_run(exp, run_name="simclr/correlations", tags={KEY_TAG: "simclr/_correlations"}).info.run_id
    client.log_batch(old, metrics=[Metric("corr/rankme/spearman", v, 0, 0) for v in (0.5, 0.7)], synchronous=True)
    config = Config(data=DataConfig(n_eval=200))

    def sync():
        store_family_analysis(ws, "simclr")
        assert sync_family(ws, "simclr", tracking_uri=uri, config=config).points_logged > 0
        _assert_one_current_value_per_step(client, ws, "simclr", uri)

    sync()
    assert client.get_run(old).info.lifecycle_stage == "deleted"
    _replace(ws, "simclr/run-0/epoch=01", scale=0.5)  # rewritten in place
    sync()
    # replaced by another epoch's content under a name that holds no epoch: its points move
    _replace(ws, "simclr/run-0/epoch=02", scale=1.0, epoch=5, fingerprint=ws.records.get("simclr/run-0/epoch=03", "checkpoint")["fingerprint"])
    sync()
    assert not any(step == 2 for (run, _), points in mlflow_series(client).items() if run == "simclr/run-0" for step, _ in points)
    ws.records.put("simclr/run-0/epoch=00", "gone", {"source": "x", "time": 0.0})  # deleted: its points stay
    sync()
    ws.records.delete("simclr/run-0/epoch=00", "gone")  # restored
    sync()
    # a second checkpoint at an epoch already held (last.ckpt beside epoch=03.ckpt)
    ws.embeddings.write("simclr/run-0/last", {"eval": np.zeros((2, 2), np.float32)}, {"fingerprint": "fp-last", "epoch": 3})
    for part in ("checkpoint", *ws.records.parts("simclr/run-0/epoch=03")):
        record = ws.records.get("simclr/run-0/epoch=03", part)
        assert record is not None
        ws.records.put("simclr/run-0/last", part, {**record, "fingerprint": "fp-last"})
    _replace(ws, "simclr/run-0/last", scale=2.0)
    sync()
    # a configuration change: every value is measured again, the params say the new settings,
    # and metrics no longer measured leave the training run; their correlations read NaN now
    config = Config(data=DataConfig(n_eval=300))
    for checkpoint_id in ws.records.checkpoint_ids("simclr"):
        _replace(ws, checkpoint_id, scale=1.1)
        ws.records.delete(checkpoint_id, "metrics-spectral")
    sync()
    (run,) = client.search_runs([exp], filter_string="attributes.run_name = 'simclr/run-0'")
    assert run.data.params["data.n_eval"] == "300" and "ssl_eval.now.data.n_eval" not in run.data.tags
    assert not any(key.startswith("label_free/rankme") for key in run.data.metrics)
    (corr,) = client.search_runs([exp], filter_string="attributes.run_name = 'simclr/correlations'")
    assert math.isnan(corr.data.metrics["corr/rankme/spearman"]) and not math.isnan(corr.data.metrics["corr/silhouette/spearman"])
    # every run that was rebuilt is in MLflow's trash under a name that says so, without its key
    trashed = client.search_runs([exp], run_view_type=ViewType.DELETED_ONLY)
    assert trashed and all(r.info.run_name.endswith(" (replaced)") and KEY_TAG not in r.data.tags for r in trashed)
    assert corr.data.tags[ANALYSIS_TAG] == "7"  # one step per analysis that changed the correlations

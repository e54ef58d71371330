"""The MLflow mirror's alert tags and figures, on a sqlite store in tmp_path (no Prefect)."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from ssl_eval.analysis import analyze_family
from ssl_eval.config import Config, DataConfig, FamilyConfig, VerdictConfig
from ssl_eval.verdict.records import store_verdict
from tasks.mlflow_mirror import (
    ALERT_TAG, DESCRIPTION_TAG, EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, FIGURES_TAG, KEY_TAG, SUMMARY_DESCRIPTION,
    SUMMARY_EXPERIMENT, sync_family,
)
from tests.helpers import synthetic_workspace


def test_alert_tags_and_figures_on_the_correlations_run(tmp_path, mlflow_store):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=2, collapse_at="simsiam/run-1/epoch=02")
    analysis = analyze_family(ws, "simsiam")
    verdict = store_verdict(ws, "simsiam", analysis, VerdictConfig(window=3))
    uri = mlflow_store(tmp_path / "mlflow.db")
    first = sync_family(ws, "simsiam", tracking_uri=uri)
    client = MlflowClient(uri)

    def run(family, name):
        exp = client.get_experiment_by_name(f"ssl-eval/{family}").experiment_id
        return client.search_runs([exp], filter_string=f"attributes.run_name = '{name}'")[0]

    assert run("simsiam", "simsiam/run-1").data.tags[ALERT_TAG] == "collapse"
    assert run("simsiam", "simsiam/run-0").data.tags[ALERT_TAG] == "none"
    corr = run("simsiam", "simsiam/correlations")
    assert corr.data.tags[ALERT_TAG] == "collapse"
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
    MlflowClient.get_metric_history = lambda self, *a, **k: reads.append(a) or real_history(self, *a, **k)
    try:
        again = sync_family(ws, "simsiam", tracking_uri=uri)
    finally:
        MlflowClient.get_metric_history = real_history
    assert first["points_logged"] > 0 and again["points_logged"] == 0
    assert reads == []


def _all_runs(client):
    return {(e.name, r.info.run_name): r for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id])}


def test_classic_view_unique_run_names_params_and_a_lean_summary(tmp_path, mlflow_store):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=2)
    for family in ("simclr", "simsiam"):
        analyze_family(ws, family)
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


def test_older_mirrors_are_brought_up_to_date(tmp_path, mlflow_store):
    """Experiments without the kind tag, runs named 'run-0', a summary run flooded with
    corr/* metrics, and a setting changed since the params were logged."""
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1)
    analyze_family(ws, "simclr")
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

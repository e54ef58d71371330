"""The MLflow mirror's alert tags and figures, on a sqlite store in tmp_path (no Prefect)."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from ssl_eval.analysis import analyze_family
from tasks.mlflow_mirror import ALERT_TAG, FIGURES_TAG, sync_family
from tests.helpers import synthetic_workspace


def test_alert_tags_and_figures_on_the_correlations_run(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=2, collapse_at="simsiam/run-1/epoch=02")
    analyze_family(ws, "simsiam")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = sync_family(ws, "simsiam", tracking_uri=uri)
    client = MlflowClient(uri)

    def run(family, name):
        exp = client.get_experiment_by_name(f"ssl-eval/{family}").experiment_id
        return client.search_runs([exp], filter_string=f"attributes.run_name = '{name}'")[0]

    assert run("simsiam", "run-1").data.tags[ALERT_TAG] == "collapse"
    assert run("simsiam", "run-0").data.tags[ALERT_TAG] == "none"
    corr = run("simsiam", "correlations")
    assert corr.data.tags[ALERT_TAG] == "collapse"
    assert {"corr/entropy_gaussian/spearman_signed", "corr/silhouette/spearman_ci_low",
            "corr/rankme/kendall_late"} <= set(corr.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(corr.info.run_id, "figures")}
    assert artifacts == {"figures/trajectories.png", "figures/metric_vs_probe.png", "figures/signed_correlations.png"}
    assert corr.data.tags[FIGURES_TAG] == ws.records.get("simsiam", "correlations")["inputs_digest"]
    # idempotent: nothing new is logged, the figures are not redrawn
    again = sync_family(ws, "simsiam", tracking_uri=uri)
    assert first["points_logged"] > 0 and again["points_logged"] == 0

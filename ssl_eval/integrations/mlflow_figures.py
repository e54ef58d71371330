"""The figures of a family's correlations run in MLflow, drawn where someone looks.

``ssl-eval evaluate`` into the work dir's own tracking store logs the answers without them;
:func:`draw_figures` (called by ``ssl-eval ui`` before the UI opens) draws every family's that
is missing or shows an older analysis. Served runs and ``--mlflow-uri`` draw them in the
mirror's sync (:func:`log_figures`).
"""

from __future__ import annotations

from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from ssl_eval.analysis import family_rows, stored_analysis
from ssl_eval.common.names import readable_id
from ssl_eval.common.urls import with_credentials
from ssl_eval.integrations.mlflow_history import KEY_TAG
from ssl_eval.results.answers import FamilyAnalysisRecord
from ssl_eval.results.workspace import Workspace

__all__ = ["CORRELATIONS_KEY", "FIGURES_TAG", "draw_figures", "log_figures"]

CORRELATIONS_KEY = "_correlations"  # the run key of a family's correlations run (after its family's id)
FIGURES_TAG = "ssl_eval.figures_digest"  # the analysis inputs the logged figures show


def log_figures(client: MlflowClient, run: Run, family: str, rows: list[dict[str, Any]], analysis: FamilyAnalysisRecord) -> bool:
    """Log the PNG figures of a family's correlations run (``figures/*.png``).

    They are redrawn only when the analysis they show changed (tag ``ssl_eval.figures_digest``).

    Args:
        client: the MLflow client.
        run: the family's correlations run, as found.
        family: the family's id.
        rows: its checkpoints' rows.
        analysis: its stored analysis.

    Returns:
        Whether the figures were drawn.
    """
    digest = analysis.inputs_digest
    if not rows or run.data.tags.get(FIGURES_TAG) == digest:
        return False
    from ssl_eval.reporting import figures as plots
    metrics = analysis.metrics
    with plots.DRAWING:  # matplotlib is not thread-safe: figures are built and drawn one at a time (ssl_eval/reporting/figures.py)
        figures = {
            "figures/trajectories.png": plots.trajectories(rows, family),
            "figures/metric_vs_probe.png": plots.metric_vs_probe(rows, family, metrics),
            "figures/signed_correlations.png": plots.correlation_heatmap(
                {"all epochs": metrics, "late window": {n: {"spearman_signed": c.get("spearman_late_signed")} for n, c in metrics.items()}},
                title=f"{family}: signed Spearman with the probe"),
        }
        for name, fig in figures.items():
            client.log_figure(run.info.run_id, fig, name)
    client.set_tag(run.info.run_id, FIGURES_TAG, digest)
    return True


def draw_figures(workspace: Workspace, tracking_uri: str) -> list[str]:
    """Log the figures a sync with ``figures=False`` left to be drawn where someone looks.

    Every family mirrored into ``tracking_uri`` whose correlations run lacks its figures or
    shows them for an older analysis gets them now (``ssl-eval ui`` calls this before the UI
    opens).

    Returns:
        The families whose figures were drawn.
    """
    drawn = []
    with workspace.lock("mlflow-sync"):
        client = MlflowClient(with_credentials(tracking_uri))
        for family in workspace.records.families():
            exp = client.get_experiment_by_name(f"ssl-eval/{readable_id(family)}")
            analysis = stored_analysis(workspace, family)
            if exp is None or analysis is None:
                continue
            found = client.search_runs([exp.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{family}/{CORRELATIONS_KEY}'",
                                       max_results=1)
            if found and log_figures(client, found[0], family, family_rows(workspace, family), analysis):
                drawn.append(family)
    return drawn

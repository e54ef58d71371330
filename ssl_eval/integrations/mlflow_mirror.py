"""Idempotent mirror of the records into MLflow (the records stay the source of truth).

Not a task itself: the ``track-family`` task (tasks/track.py) calls :func:`sync_family`. It
lives beside the tasks because the core never imports mlflow.

Scheme (README, "MLflow"): experiment ``ssl-eval/<family>``; one run per training run
(named ``<family>/<run>``), found by its ``ssl_eval.key`` tag, metrics at ``step=epoch`` and
the evaluation's settings as params; one ``<family>/correlations`` run per family with the
full correlation table; experiment ``ssl-eval/_summary`` with one lean ``<family>/summary``
run per family (probe, signed Spearman per metric). The family's verdict is the description
of its experiment (the experiments list shows it), of its correlations run and of its summary
run (each run's page shows it first). Every experiment is tagged as a classic
machine-learning experiment (``mlflow.experimentKind``); MLflow 3.17's UI ignores that tag
and follows a switch kept in the browser, which ``ssl-eval ui`` presets (ssl_eval/integrations/mlflow_ui.py).
No series ever holds two values at one step (ssl_eval/integrations/mlflow_history.py: a training run whose
history must change is rebuilt; the correlations and summary runs log at a step that counts
the family's analyses), and a sync with nothing changed logs nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow.entities import Param, Run, RunTag
from mlflow.tracking import MlflowClient

from ssl_eval.analysis import STALE_HINT, alert_tag, alerts, family_rows, rows_digest, stale_reasons, stored_analysis
from ssl_eval.common.names import display_name, readable_id
from ssl_eval.common.urls import redact, with_credentials
from ssl_eval.config import Config
from ssl_eval.integrations.mlflow_history import KEY_TAG as KEY_TAG  # the run key's tag (the tests read it here)
from ssl_eval.integrations.mlflow_history import (
    analysis_layout_is_older,
    find_run,
    finish,
    history,
    log_analysis,
    log_new,
    points_digest,
    retire_run,
    run_points,
    stale_points,
)
from ssl_eval.pipeline.outcomes import MirrorOutcome
from ssl_eval.results.answers import FamilyAnalysisRecord, VerdictRecord, answers_key
from ssl_eval.results.parts import MirrorNote, Part
from ssl_eval.results.workspace import Workspace
from ssl_eval.verdict.answers import TAG_PREFIX, verdict_tags

# The tool's own MLflow names start with "_", which no escaped store name does
# (ssl_eval/sources/checkpoints.py: escape_name): a family called "summary" or a run called
# "correlations" never shares the tool's experiment, run key or artifact folder.
SUMMARY_EXPERIMENT = "ssl-eval/_summary"
CORRELATIONS_KEY = "_correlations"
ALERT_TAG = "ssl_eval.alert"  # "collapse", "non_finite", both comma-joined, or "none"
STALE_TAG = TAG_PREFIX + "stale"  # "no", or why the stored verdict no longer answers ("stale, run `ssl-eval evaluate` (...)")
GONE_TAG = "ssl_eval.gone"  # checkpoints deleted from the store, comma-joined, or "none"
FIGURES_TAG = "ssl_eval.figures_digest"  # the analysis inputs the logged figures show
# the points a training run's MLflow run was last brought level with: when they are unchanged
# a sync reads no metric history (one request per key, the bulk of a sync's time otherwise)
POINTS_TAG = "ssl_eval.points_digest"
# MLflow 3.1-3.x UIs opened an experiment by this tag ("custom_model_development": the classic
# runs view); 3.17 follows the browser's "Model training" switch instead (ssl_eval/integrations/mlflow_ui.py).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# MLflow shows this tag as the description of an experiment (experiments list) or of a run (its page)
DESCRIPTION_TAG = "mlflow.note.content"
SUMMARY_DESCRIPTION = (
    "One run per family: its verdict (the run's description and tags ssl_eval.verdict.*), the linear probe "
    "(first, last, best) and one signed Spearman per label-free metric. Pick the columns to compare with "
    "'Columns', or open the chart view; each family's full table is its correlations run."
)
CORR_STATS = tuple(
    f"{stat}{window}{part}" for stat in ("spearman", "kendall", "pearson") for window in ("", "_late")
    for part in ("", "_p", "_ci_low", "_ci_high", "_signed")
) + ("regret",)
_DESCRIPTION_MAX = 5000  # MLflow keeps tag values up to 8000 characters


def _experiment(client: MlflowClient, name: str, artifacts: Path, description: str = "") -> str:
    """The experiment ``name`` (created with the kind tag), its description set when given."""
    exp = client.get_experiment_by_name(name)
    tags = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, **({DESCRIPTION_TAG: description} if description else {})}
    if exp is None:
        artifacts.mkdir(parents=True, exist_ok=True)
        return client.create_experiment(name, artifact_location=artifacts.as_uri(), tags=tags)
    for tag, value in tags.items():  # made before the tag existed, or the verdict changed
        if exp.tags.get(tag) != value:
            client.set_experiment_tag(exp.experiment_id, tag, value)
    return exp.experiment_id


def summary_charts_url(tracking_uri: str, ui_url: str) -> str | None:
    """The URL of the summary experiment in the chart view of the MLflow UI at ``ui_url``.

    The families side by side (probe, signed Spearman per metric); None before the first sync.

    Returns:
        The URL, or None before the first sync.
    """
    exp = MlflowClient(tracking_uri).get_experiment_by_name(SUMMARY_EXPERIMENT)
    return f"{ui_url}/#/experiments/{exp.experiment_id}/runs?compareRunsMode=CHART" if exp else None


def evaluation_params(config: Config, family: str) -> dict[str, str]:
    """The settings that decide a family's numbers, as MLflow params.

    For example ``data.n_eval``, ``metrics.k``, ``probe.random_state``, ``family.arch``.

    Returns:
        Dotted setting name -> its value as text.
    """
    sections = {"data": config.data, "metrics": config.metrics, "probe": config.probe, "family": config.family(family)}
    params = {}
    for section, model in sections.items():
        for key, value in model.model_dump(mode="json").items():
            params[f"{section}.{key}"] = "auto" if value is None else str(value)
    return params


def _log_params(client: MlflowClient, run: Run, params: dict[str, str]) -> None:
    """Log the params ``run`` (as found) does not hold yet, in one request.

    MLflow params never change: a setting changed since is shown as tag
    ``ssl_eval.now.<param>`` with its current value.
    """
    held, tags = run.data.params, run.data.tags
    new = [Param(k, v[:6000]) for k, v in params.items() if k not in held]
    now = [RunTag(f"ssl_eval.now.{k}", v) for k, v in params.items()
           if k in held and held[k] != v[:6000] and tags.get(f"ssl_eval.now.{k}") != v]
    if new or now:
        client.log_batch(run.info.run_id, params=new, tags=now, synchronous=True)


def _log_figures(client: MlflowClient, run: Run, family: str, rows: list[dict[str, Any]], analysis: FamilyAnalysisRecord) -> bool:
    """PNG artifacts of the correlations run (figures/*.png), redrawn only when the analysis they show changed (tag ``ssl_eval.figures_digest``).

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


def prepare_store(workspace: Workspace, tracking_uri: str) -> None:
    """Open the tracking store once, so that a new sqlite database gets its tables now.

    ``ssl-eval evaluate`` calls it while the Prefect server starts: MLflow's migrations of a
    new database are most of a first sync's time once the figures are left to ``ssl-eval ui``.
    """
    with workspace.lock("mlflow-sync"):  # not created by two threads at once (sync_family)
        MlflowClient(with_credentials(tracking_uri)).search_experiments(max_results=1)


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
            if found and _log_figures(client, found[0], family, family_rows(workspace, family), analysis):
                drawn.append(family)
    return drawn


def sync_family(workspace: Workspace, family: str, *, tracking_uri: str, store: str = "", config: Config | None = None,
                figures: bool = True) -> MirrorOutcome:
    """Mirror one family's stored records, analysis and verdict into MLflow.

    ``config``: the evaluation's configuration, logged as each run's params; a stored verdict
    that no longer answers for it (or for the records) is tagged ``ssl_eval.verdict.stale``.
    ``figures`` False leaves the PNGs (seconds of matplotlib per family, most of a first
    sync's time) to :func:`draw_figures`, once the answers are logged.

    Returns:
        The :class:`~ssl_eval.pipeline.outcomes.MirrorOutcome` of the sync.
    """
    # One sync at a time per work dir: a sqlite store must not be created by two threads
    # at once, and run lookup-or-create must not race with itself.
    with workspace.lock("mlflow-sync"):
        params = evaluation_params(config, family) if config is not None else {}
        # The full URI (the held one when the parameter is redacted) is read here, where it is
        # used, and handed to the client alone: a task never puts it in the process environment.
        client = MlflowClient(with_credentials(tracking_uri))
        return _sync_family(workspace, family, client, tracking_uri=redact(tracking_uri) or "", store=redact(store) or "", params=params,
                            key=answers_key(config, family) if config is not None else None, figures=figures)


def _summary_values(rows: list[dict[str, Any]], analysis: FamilyAnalysisRecord) -> dict[str, float]:
    """The numbers that compare families at a glance; the full table stays in the correlations run.

    The probe (first, last, best), the number of checkpoints and one signed Spearman per metric.

    Returns:
        Metric key -> value, as the summary run logs them.
    """
    probes = sorted((r["epoch"], r["probe"]["linear_acc"]) for r in rows if "linear_acc" in r["probe"])
    values = {"checkpoints": float(len(rows))}
    if probes:
        values.update({"probe/first_linear_acc": probes[0][1], "probe/last_linear_acc": probes[-1][1],
                       "probe/best_linear_acc": max(p for _, p in probes)})
    values.update({f"signed_spearman/{metric}": c["spearman_signed"]
                   for metric, c in analysis.metrics.items() if c.get("spearman_signed") is not None})
    return values


def _run_tags(workspace: Workspace, family: str, run: str, history_rows: list[dict[str, Any]], failed: list[str],
              store: str, verdict: VerdictRecord | None, rule: dict[str, Any]) -> dict[str, str]:
    """A training run's tags.

    Family, run, store, flags, failed and deleted checkpoints, alerts, its verdict, and
    method/arch/dataset of its latest checkpoint.

    Returns:
        Tag name -> value.
    """
    mine = [r for r in history_rows if r["run"] == run and not r.get("gone")]
    tags = {
        "family": display_name(family),
        "run": display_name(run),
        "store": store,
        "ssl_eval.flags": ",".join(sorted({f for r in mine for f in r["flags"]})) or "none",
        # failed checkpoints, listed with reasons by `ssl-eval report`
        "ssl_eval.failed": ",".join(c.split("/")[2] for c in failed if c.split("/")[1] == run) or "none",
        ALERT_TAG: alert_tag(alerts(mine, **rule)),
        # checkpoints deleted from the store: their points stay, the analyses leave them out
        GONE_TAG: ",".join(r["id"].split("/")[2] for r in history_rows if r["run"] == run and r.get("gone")) or "none",
        **(verdict_tags(verdict, run) if verdict else {}),
    }
    if mine:
        prov = workspace.embeddings.provenance(mine[-1]["id"]) or {}
        tags.update(method=str(mine[-1].get("method") or family), arch=str(mine[-1].get("arch") or ""),
                    dataset=str(prov.get("dataset", "")))
    return tags


def _sync_training_run(client: MlflowClient, exp_id: str, key: str, tags: dict[str, str], params: dict[str, str],
                       points: list[tuple[str, float, int]]) -> int:
    """Bring one training run level with ``points`` (one per key and epoch).

    Unchanged points (tag ``ssl_eval.points_digest``) read nothing back.

    Returns:
        How many points were logged.
    """
    run, created = find_run(client, exp_id, key, key, tags)
    _log_params(client, run, params)
    digest, logged = points_digest(points), 0
    if created or run.data.tags.get(POINTS_TAG) != digest:
        held = {} if created else history(client, run)
        if stale_points(held, points):
            # a point that changed (a rewritten checkpoint) or must go (a failed one): MLflow
            # cannot delete a point, so the run is rebuilt whole, never given a second point at a step
            retire_run(client, client.get_run(run.info.run_id))
            run, _ = find_run(client, exp_id, key, key, tags)
            _log_params(client, run, params)
            held = {}
        logged = log_new(client, run.info.run_id, points, held, done={POINTS_TAG: digest})
    finish(client, run)
    return logged


def _sync_analysis_runs(client: MlflowClient, workspace: Workspace, family: str, exp_id: str, rows: list[dict[str, Any]],
                        tags: dict[str, str], params: dict[str, str], figures: bool) -> int:
    """Log the family's correlations run and summary run where their values changed.

    The correlations run holds the full table and figures (``tags`` plus its alert); each run is
    given the current values at the next analysis step when they changed.

    Returns:
        How many points were logged.
    """
    analysis = stored_analysis(workspace, family) or FamilyAnalysisRecord()
    corr = {f"corr/{metric}/{stat}": c[stat] for metric, c in analysis.metrics.items()
            for stat in CORR_STATS if c.get(stat) is not None}
    corr_run, _ = find_run(client, exp_id, f"{family}/{CORRELATIONS_KEY}", f"{family}/correlations", tags,
                           stale=analysis_layout_is_older)
    _log_params(client, corr_run, params)
    logged = log_analysis(client, corr_run, corr)
    if figures:
        _log_figures(client, corr_run, family, rows, analysis)
    finish(client, corr_run)
    summary_exp = _experiment(client, SUMMARY_EXPERIMENT, workspace.mlflow_artifacts / "_summary", SUMMARY_DESCRIPTION)
    summary_run, _ = find_run(client, summary_exp, f"summary/{family}", f"{family}/summary",
                              {k: v for k, v in tags.items() if k != ALERT_TAG},
                              stale=lambda run: analysis_layout_is_older(run) or any(m.startswith("corr/") for m in run.data.metrics))
    _log_params(client, summary_run, params)
    logged += log_analysis(client, summary_run, _summary_values(rows, analysis))
    finish(client, summary_run)
    return logged


def _family_tags(family: str, store: str, rows: list[dict[str, Any]], rule: dict[str, Any], verdict: VerdictRecord | None,
                 stale: list[str]) -> dict[str, str]:
    """The family's own tags (its correlations and summary runs).

    The stored verdict, and ``ssl_eval.verdict.stale`` when it no longer answers for the records or
    the configuration.

    Returns:
        Tag name -> value.
    """
    return {"family": display_name(family), "store": store, ALERT_TAG: alert_tag(alerts(rows, **rule)),
            **(verdict_tags(verdict) if verdict else {}),
            STALE_TAG: f"{STALE_HINT} ({'; '.join(stale)})" if stale else "no",
            **({DESCRIPTION_TAG: verdict.summary[:_DESCRIPTION_MAX]} if verdict and verdict.summary else {})}


def _sync_family(workspace: Workspace, family: str, client: MlflowClient, *, tracking_uri: str, store: str,
                 params: dict[str, str], key: str | None, figures: bool) -> MirrorOutcome:
    verdict = workspace.records.read(family, Part.VERDICT, VerdictRecord)
    described = {DESCRIPTION_TAG: verdict.summary[:_DESCRIPTION_MAX]} if verdict and verdict.summary else {}
    # the family's name where it is unique as it is (sim.clr), else its id (ssl_eval/common/names.py)
    exp_id = _experiment(client, f"ssl-eval/{readable_id(family)}", workspace.mlflow_artifacts / family,
                         described.get(DESCRIPTION_TAG, ""))
    history_rows = family_rows(workspace, family, include_gone=True)  # deleted checkpoints keep their points
    rows = [r for r in history_rows if not r.get("gone")]
    failed = workspace.records.ids_with(Part.FAILURE, family)
    analysis = stored_analysis(workspace, family)
    rule = analysis.collapse_rule if analysis is not None else {}  # as the analysis judged
    logged, runs = 0, sorted({r["run"] for r in history_rows} | {cid.split("/")[1] for cid in failed})
    for run in runs:
        tags = _run_tags(workspace, family, run, history_rows, failed, store, verdict, rule)
        run_params = {**params, **({"checkpoint.arch": tags["arch"]} if tags.get("arch") else {})}
        points = run_points([r for r in history_rows if r["run"] == run])
        logged += _sync_training_run(client, exp_id, f"{family}/{run}", tags, run_params, points)
    digest = rows_digest(rows)
    family_tags = _family_tags(family, store, rows, rule, verdict, stale_reasons(analysis, verdict, digest, key))
    logged += _sync_analysis_runs(client, workspace, family, exp_id, rows, family_tags, params, figures)
    # Only now is the mirror known to be whole: a run cut short syncs again next time.
    workspace.records.write(family, Part.MLFLOW, MirrorNote(digest=digest, tracking_uri=tracking_uri, time=time.time()))
    return MirrorOutcome(family, runs=len(runs), points_logged=logged, experiment_id=exp_id)

"""Idempotent mirror of the records into MLflow (the records stay the source of truth).

Not a task itself: the ``track-family`` task (tasks/track.py) calls :func:`sync_family`; the
figures of a family's correlations run are :mod:`ssl_eval.integrations.mlflow_figures`.

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

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Param, Run, RunTag
from mlflow.tracking import MlflowClient

from ssl_eval.analysis import family_rows, rows_digest, stale_reasons, stored_analysis
from ssl_eval.common import sqlite_templates
from ssl_eval.common.names import readable_id
from ssl_eval.common.urls import redact, with_credentials
from ssl_eval.config import Config
from ssl_eval.integrations import mlflow_figures
from ssl_eval.integrations.mlflow_figures import CORRELATIONS_KEY
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
from ssl_eval.integrations.mlflow_tags import ALERT_TAG, DESCRIPTION_MAX, DESCRIPTION_TAG, evaluation_params, family_tags, run_tags, summary_values
from ssl_eval.pipeline.outcomes import MirrorOutcome
from ssl_eval.results.answers import FamilyAnalysisRecord, VerdictRecord, answers_key
from ssl_eval.results.parts import MirrorNote, Part
from ssl_eval.results.workspace import Workspace

# The tool's own MLflow names start with "_", which no escaped store name does
# (ssl_eval/sources/checkpoints.py: escape_name): a family called "summary" or a run called
# "correlations" never shares the tool's experiment, run key or artifact folder.
SUMMARY_EXPERIMENT = "ssl-eval/_summary"
# the points a training run's MLflow run was last brought level with: when they are unchanged
# a sync reads no metric history (one request per key, the bulk of a sync's time otherwise)
POINTS_TAG = "ssl_eval.points_digest"
# MLflow 3.1-3.x UIs opened an experiment by this tag ("custom_model_development": the classic
# runs view); 3.17 follows the browser's "Model training" switch instead (ssl_eval/integrations/mlflow_ui.py).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
SUMMARY_DESCRIPTION = (
    "One run per family: its verdict (the run's description and tags ssl_eval.verdict.*), the linear probe "
    "(first, last, best) and one signed Spearman per label-free metric. Pick the columns to compare with "
    "'Columns', or open the chart view; each family's full table is its correlations run."
)
CORR_STATS = tuple(
    f"{stat}{window}{part}" for stat in ("spearman", "kendall", "pearson") for window in ("", "_late")
    for part in ("", "_p", "_ci_low", "_ci_high", "_signed")
) + ("regret",)


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


def prepare_store(workspace: Workspace, tracking_uri: str) -> None:
    """Open the tracking store once, so that a new sqlite database gets its tables now.

    ``ssl-eval evaluate`` calls it while the Prefect server starts: MLflow's migrations of a
    new database are most of a first sync's time once the figures are left to ``ssl-eval ui``.
    """
    with workspace.lock("mlflow-sync"):  # not created by two threads at once (sync_family)
        _client(workspace, tracking_uri).search_experiments(max_results=1)


def _client(workspace: Workspace, tracking_uri: str) -> MlflowClient:
    """A client of ``tracking_uri``; the work dir's own new sqlite store starts from the cached template.

    MLflow takes 2.6 s (two cores) to create and migrate a new sqlite store and 0.06 s to open
    a copy of one (``ssl_eval.common.sqlite_templates``). The first new store of each MLflow
    version is saved as the template once MLflow has made it, before anything is logged;
    later ones start as a copy whose default experiment points into their own work dir. Call
    it under the work dir's ``mlflow-sync`` lock.

    Returns:
        The client.
    """
    db = workspace.mlflow_db
    if tracking_uri != workspace.mlflow_uri or db.exists():
        return MlflowClient(with_credentials(tracking_uri))  # another store, or this one made before: as usual
    template = sqlite_templates.template_path("mlflow")
    if sqlite_templates.copy_template(template, db):
        _own_default_experiment(db, workspace.mlflow_artifacts / "0")
        return MlflowClient(tracking_uri)
    client = MlflowClient(tracking_uri)  # MLflow creates and migrates the new store (at the latest on first use)
    client.search_experiments(max_results=1)
    sqlite_templates.save_template(db, template)
    return client


def _own_default_experiment(db: Path, artifacts: Path) -> None:
    """Point a copied store's default experiment (id 0, MLflow's own) at this work dir, made now.

    Written by hand: MLflow has no call that moves an experiment's artifact location. A store
    it cannot update is left as copied (its default experiment holds nothing of ssl-eval's).
    """
    now = int(time.time() * 1000)
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
                           "WHERE experiment_id = 0", (artifacts.as_uri(), now, now))


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
        client = _client(workspace, tracking_uri)
        return _sync_family(workspace, family, client, tracking_uri=redact(tracking_uri) or "", store=redact(store) or "", params=params,
                            key=answers_key(config, family) if config is not None else None, figures=figures)


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
        mlflow_figures.log_figures(client, corr_run, family, rows, analysis)
    finish(client, corr_run)
    summary_exp = _experiment(client, SUMMARY_EXPERIMENT, workspace.mlflow_artifacts / "_summary", SUMMARY_DESCRIPTION)
    summary_run, _ = find_run(client, summary_exp, f"summary/{family}", f"{family}/summary",
                              {k: v for k, v in tags.items() if k != ALERT_TAG},
                              stale=lambda run: analysis_layout_is_older(run) or any(m.startswith("corr/") for m in run.data.metrics))
    _log_params(client, summary_run, params)
    logged += log_analysis(client, summary_run, summary_values(rows, analysis))
    finish(client, summary_run)
    return logged


def _sync_family(workspace: Workspace, family: str, client: MlflowClient, *, tracking_uri: str, store: str,
                 params: dict[str, str], key: str | None, figures: bool) -> MirrorOutcome:
    verdict = workspace.records.read(family, Part.VERDICT, VerdictRecord)
    described = {DESCRIPTION_TAG: verdict.summary[:DESCRIPTION_MAX]} if verdict and verdict.summary else {}
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
        tags = run_tags(workspace, family, run, history_rows, failed, store, verdict, rule)
        run_params = {**params, **({"checkpoint.arch": tags["arch"]} if tags.get("arch") else {})}
        points = run_points([r for r in history_rows if r["run"] == run])
        logged += _sync_training_run(client, exp_id, f"{family}/{run}", tags, run_params, points)
    digest = rows_digest(rows)
    own_tags = family_tags(family, store, rows, rule, verdict, stale_reasons(analysis, verdict, digest, key))
    logged += _sync_analysis_runs(client, workspace, family, exp_id, rows, own_tags, params, figures)
    # Only now is the mirror known to be whole: a run cut short syncs again next time.
    workspace.records.write(family, Part.MLFLOW, MirrorNote(digest=digest, tracking_uri=tracking_uri, time=time.time()))
    return MirrorOutcome(family, runs=len(runs), points_logged=logged, experiment_id=exp_id)

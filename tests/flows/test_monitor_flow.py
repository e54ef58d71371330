"""The evaluation flow under prefect_test_harness, on a tiny digits store.

With a real threaded Dask task runner, real zarr on disk and a real sqlite MLflow store.
"""

from __future__ import annotations

import os
import time

import pytest
from mlflow.tracking import MlflowClient
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

import tasks.analyze as analyze_task
import tasks.verdict as verdict_task
from flows.monitor import run_monitor
from ssl_eval.pipeline.outcomes import FamilyAnalysis, FamilyVerdict, PooledAnalysis
from ssl_eval.results.workspace import Workspace


def _points(client: MlflowClient) -> dict[tuple[str, str, str], list[tuple[int, str]]]:
    out = {}
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id]):
            for key in run.data.metrics:
                history = client.get_metric_history(run.info.run_id, key)
                out[(exp.name, run.info.run_name, key)] = [(m.step, repr(m.value)) for m in history]  # repr: nan == nan
    return out


def _log_analysis_steps(monkeypatch, log) -> None:
    """Append "start|end step family" lines to the file ``log`` as the analysis steps run.

    The tasks run on threads of this process, but Dask sends them pickled: a list in a closure
    would arrive as a copy, a file is the same file.
    """
    for module, name in ((analyze_task, "store_family_analysis"), (analyze_task, "store_pooled_analysis"), (verdict_task, "store_verdict")):
        def step(workspace, *args, _real=getattr(module, name), _name=name, _log=str(log), **kwargs):
            family = args[0] if args else "-"
            with open(_log, "a") as f:
                f.write(f"start {_name} {family}\n")
            out = _real(workspace, *args, **kwargs)
            with open(_log, "a") as f:
                f.write(f"end {_name} {family}\n")
            return out

        monkeypatch.setattr(module, name, step)


def _task_run_names(store) -> list[str]:
    """The names of the task runs of the flow runs named ``monitor <store>``, from the API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        named = FlowRunFilter(name=FlowRunFilterName(any_=[f"monitor {store}"]))
        return sorted(t.name for t in client.read_task_runs(flow_run_filter=named))


@pytest.mark.slow
def test_flow_end_to_end_isolates_bad_checkpoints_keeps_results_while_mlflow_is_down_resyncs_and_is_idempotent(
        prefect_harness, tiny_store, tiny_overrides, tmp_path, monkeypatch, mlflow_store, no_mlflow_figures):
    """One store, three runs (a first run costs the most, so the two scenarios share it).

    The first evaluates everything, isolates a bad file and keeps its results while MLflow is
    unreachable; the second, with MLflow back, redoes only the mirror; the third does nothing.
    """
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    _log_analysis_steps(monkeypatch, tmp_path / "steps.log")
    (tiny_store / "simclr" / "run-0" / "epoch=99.ckpt").write_bytes(b"not a checkpoint")
    os.utime(tiny_store / "simclr" / "run-0" / "epoch=99.ckpt", (time.time() - 60,) * 2)
    ws = Workspace.at(tmp_path / "work")
    down = "http://127.0.0.1:9"  # discard port: nothing listens
    summary = run_monitor(str(tiny_store), str(ws.root), overrides=tiny_overrides, tracking_uri=down)

    assert summary.checkpoints_new_or_stale == 7 and len(summary.embedded) == 6
    assert list(summary.failed) == ["simclr/run-0/epoch=99"]
    assert "not a readable torch checkpoint" in summary.failed["simclr/run-0/epoch=99"]
    # MLflow unreachable: the run still completes, nothing computed was lost
    assert set(summary.tracking_errors) == {"simclr", "simsiam"}
    assert ws.records.get("simclr", "correlations")["n_checkpoints"] == 3

    # each family analysed, then the pooled analysis once, then the verdicts that read it
    families = ("simclr", "simsiam")
    assert summary.families == families and summary.pooled == PooledAnalysis(families, n_checkpoints=6)
    assert summary.analyses["simclr"] == FamilyAnalysis("simclr", 3, summary.analyses["simclr"].n_metrics, {"collapse": 0, "non_finite": 0})
    assert {f: type(v) for f, v in summary.verdicts.items()} == {f: FamilyVerdict for f in families}
    steps = (tmp_path / "steps.log").read_text().splitlines()
    assert [s for s in steps if "store_pooled_analysis" in s] == ["start store_pooled_analysis -", "end store_pooled_analysis -"]
    pooled_start, pooled_end = steps.index("start store_pooled_analysis -"), steps.index("end store_pooled_analysis -")
    assert all(steps.index(f"end store_family_analysis {f}") < pooled_start for f in families)
    assert all(steps.index(f"start store_verdict {f}") > pooled_end for f in families)
    names = _task_run_names(tiny_store)
    assert names.count("analyze pooled") == 1 and [n for n in names if n.startswith("verdict ")] == ["verdict simclr", "verdict simsiam"]

    # zarr layout and provenance
    store = ws.embeddings
    for family in ("simclr", "simsiam"):
        for epoch in range(3):
            cid = f"{family}/run-0/epoch={epoch:02d}"
            assert store.read(cid, "eval").shape == (200, 128)
            assert store.read(cid, "probe_train").shape == (300, 128)
            assert store.provenance(cid)["epoch"] == epoch

    # the stored silhouette is the silhouette of k-means on the stored embeddings
    cid = "simclr/run-0/epoch=02"
    X = store.read(cid, "eval")
    rec = ws.records.get(cid, "metrics-clustering")
    c1 = KMeans(n_clusters=10, n_init=1, random_state=0).fit_predict(X)
    assert rec["values"]["silhouette"] == pytest.approx(silhouette_score(X, c1), abs=0.05)
    assert 0.0 <= ws.records.get(cid, "probe")["values"]["linear_acc"] <= 1.0

    # MLflow back (here: another store): only the mirror is redone, nothing is recomputed
    mlflow_store(ws.root / "mlflow.db")
    second = run_monitor(str(tiny_store), str(ws.root), overrides=tiny_overrides, tracking_uri=ws.mlflow_uri)
    assert second.checkpoints_new_or_stale == 0 and second.families == families and second.embedded == ()
    assert second.tracking_errors == {} and second.known_failed == ("simclr/run-0/epoch=99",)

    # MLflow: experiment per family, run per training run with metrics at step=epoch, correlations run
    client = MlflowClient(ws.mlflow_uri)
    experiments = {e.name for e in client.search_experiments()}
    assert {"ssl-eval/simclr", "ssl-eval/simsiam", "ssl-eval/_summary"} <= experiments
    before = _points(client)
    assert [s for s, _ in before[("ssl-eval/simclr", "simclr/run-0", "label_free/silhouette")]] == [0, 1, 2]
    for family in families:
        assert [s for s, _ in before[(f"ssl-eval/{family}", f"{family}/run-0", "probe/linear_acc")]] == [0, 1, 2]
    assert ("ssl-eval/simclr", "simclr/correlations", "corr/silhouette/spearman") in before
    simclr = client.get_experiment_by_name("ssl-eval/simclr").experiment_id
    run0 = client.search_runs([simclr], filter_string="tags.`ssl_eval.key` = 'simclr/run-0'")[0]
    assert run0.data.tags["ssl_eval.failed"] == "epoch=99" and run0.data.tags["dataset"] == "digits"
    assert run0.data.params["data.name"] == "digits" and run0.data.params["data.n_eval"] == "200"  # the evaluation's settings

    # a rerun embeds and computes nothing and adds no MLflow point
    pooled_runs = _task_run_names(tiny_store).count("analyze pooled")
    again = run_monitor(str(tiny_store), str(ws.root), overrides=tiny_overrides, tracking_uri=ws.mlflow_uri)
    assert again.checkpoints_new_or_stale == 0 and again.families == () and again.pooled is None and again.analyses == {}
    assert _task_run_names(tiny_store).count("analyze pooled") == pooled_runs  # nothing refreshed: no analysis task at all
    assert again.known_failed == ("simclr/run-0/epoch=99",)
    assert _points(client) == before
    assert sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments()) == len(
        {(e, r) for e, r, _ in before}
    )

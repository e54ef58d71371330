"""The analysis tasks and the verdict task, called without a Prefect server (logger and artifact stubbed).

A family's alert warnings, the pooled analysis, and the verdict's log line and artifact.
"""

from __future__ import annotations

import pytest

import tasks.analyze as analyze_task
import tasks.verdict as verdict_task
from ssl_eval.analysis import POOLED_KEY
from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import FamilyAnalysis, FamilyVerdict, PooledAnalysis
from ssl_eval.reporting.markdown import md_escape
from tests.helpers import synthetic_workspace


class _Logger:
    def __init__(self):
        self.warnings, self.infos = [], []

    def warning(self, message, *args):
        self.warnings.append(message % args)

    def info(self, message, *args):
        self.infos.append(message % args)


def test_collapse_is_a_warning_listing_the_checkpoints(tmp_path, monkeypatch):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1, collapse_at="simclr/run-0/epoch=01")
    logger = _Logger()
    monkeypatch.setattr(analyze_task, "get_run_logger", lambda: logger)
    out = analyze_task.analyze_family.fn("simclr", ws, Config())
    stored = ws.records.get("simclr", "correlations")
    assert out == FamilyAnalysis("simclr", n_checkpoints=4, n_metrics=len(stored["metrics"]), alerts={"collapse": 1, "non_finite": 0})
    assert stored["n_checkpoints"] == 4 and out.n_metrics > 0
    assert logger.warnings == ["collapse alert in simclr: 1 checkpoint(s): simclr/run-0/epoch=01 "
                               "(centered RankMe 1.00 < 2: the embeddings vary along about one direction)"]
    assert ws.records.get(POOLED_KEY, "correlations") is None  # the pooled analysis is its own task
    analyze_task.analyze_family.fn("simsiam", ws, Config())
    assert len(logger.warnings) == 1  # no alert in simsiam


def test_the_pooled_task_stores_every_familys_checkpoints_together(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1)
    out = analyze_task.analyze_pooled.fn(ws, Config())
    assert out == PooledAnalysis(("simclr", "simsiam"), n_checkpoints=8)
    stored = ws.records.get(POOLED_KEY, "correlations")
    assert stored["families"] == ["simclr", "simsiam"] and stored["n_checkpoints"] == 8 and stored["within_family_rank"]


def test_the_verdict_task_stores_the_verdict_and_opens_its_artifact_with_it(tmp_path, monkeypatch):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1, collapse_at="simclr/run-0/epoch=01")
    logger, artifacts = _Logger(), []
    monkeypatch.setattr(analyze_task, "get_run_logger", lambda: logger)
    monkeypatch.setattr(verdict_task, "get_run_logger", lambda: logger)
    monkeypatch.setattr(verdict_task, "create_markdown_artifact", lambda text, key, description: artifacts.append((key, text, description)))
    analyze_task.analyze_family.fn("simclr", ws, Config())
    analyze_task.analyze_pooled.fn(ws, Config())
    out = verdict_task.verdict.fn("simclr", ws, Config())
    verdict = ws.records.get("simclr", "verdict")  # recomputed with the analysis, stored
    assert out == FamilyVerdict("simclr", progress=verdict["progress"]["state"], summary=verdict["summary"])
    assert logger.infos == [f"verdict for simclr: {verdict['summary']}"]
    key, text, description = artifacts[0]
    assert key == "correlations-simclr" and "| silhouette |" in text
    assert description == md_escape(
        f"progress: {verdict['progress']['state']} · keep: {verdict['keep']['checkpoint']} · trusted: none")
    assert text.startswith("# simclr: verdict\n\n" + verdict["summary"][:20])
    assert text.index("- **keep**") < text.index("| silhouette |")  # the answers before the numbers


def test_the_verdict_task_without_the_familys_analysis_says_what_to_run(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=3, runs=1)
    with pytest.raises(FileNotFoundError, match=r"no analysis of family 'simclr' in .*; run its analyze task first"):
        verdict_task.verdict.fn("simclr", ws, Config())

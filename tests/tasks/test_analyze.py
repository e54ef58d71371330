"""The analyze task's alert warning, verdict line and artifact, called without a Prefect server (logger and artifact stubbed)."""

from __future__ import annotations

import tasks.analyze as analyze_task
from ssl_eval.analysis import POOLED_KEY
from ssl_eval.config import Config
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
    logger, artifacts = _Logger(), []
    monkeypatch.setattr(analyze_task, "get_run_logger", lambda: logger)
    monkeypatch.setattr(analyze_task, "create_markdown_artifact", lambda text, key, description: artifacts.append((key, text, description)))
    out = analyze_task.analyze.fn("simclr", ws, Config())
    assert out["alerts"] == {"collapse": 1, "non_finite": 0}
    assert logger.warnings == ["collapse alert in simclr: 1 checkpoint(s): simclr/run-0/epoch=01 "
                               "(centered RankMe 1.00 < 2: the embeddings vary along about one direction)"]
    key, text, description = artifacts[0]
    assert key == "correlations-simclr" and "| silhouette |" in text
    verdict = ws.records.get("simclr", "verdict")  # recomputed with the analysis, stored
    assert out["progress"] == verdict["progress"]["state"]
    assert logger.infos == [f"verdict for simclr: {verdict['summary']}"]
    assert description == analyze_task.md_escape(
        f"progress: {verdict['progress']['state']} · keep: {verdict['keep']['checkpoint']} · trusted: none")
    assert text.startswith("# simclr: verdict\n\n" + verdict["summary"].replace(".", ".")[:20])
    assert text.index("- **keep**") < text.index("| silhouette |")  # the answers before the numbers
    assert ws.records.get(POOLED_KEY, "correlations")["n_checkpoints"] == 8
    analyze_task.analyze.fn("simsiam", ws, Config())
    assert len(logger.warnings) == 1  # no alert in simsiam

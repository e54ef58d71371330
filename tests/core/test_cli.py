"""The command line: messages for bad input, the metrics command, the report schema."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ssl_eval.cli import app
from ssl_eval.metrics import MetricOptions, compute_group

runner = CliRunner()


def test_metrics_command_matches_registry(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    y = np.arange(300) % 4
    np.save(tmp_path / "e.npy", X)
    np.save(tmp_path / "y.npy", y)
    result = runner.invoke(app, ["metrics", str(tmp_path / "e.npy"), "--labels", str(tmp_path / "y.npy"), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    expected = compute_group("spectral", X, labels=y, options=MetricOptions(), random_state=0).values
    assert doc["metrics"]["rankme"] == pytest.approx(expected["rankme"])
    assert "ami_ground_truth" in doc["metrics"] and "alignment" not in doc["metrics"]


def test_metrics_command_rejects_wrong_shape(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros(5))
    result = runner.invoke(app, ["metrics", str(tmp_path / "e.npy")])
    assert result.exit_code == 2 and "expected an (N, D) array" in result.output


def test_evaluate_missing_store_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope"), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert gc.isenabled()  # paused while evaluate starts up, back on whatever its exit


def test_evaluate_bad_config_names_the_key(tmp_path):
    (tmp_path / "ssl_eval.toml").write_text("[probe]\nmax_iters = 5\n")
    result = runner.invoke(app, ["evaluate", str(tmp_path), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2 and "probe.max_iters" in result.output
    assert gc.isenabled()


def test_report_on_empty_workdir(tmp_path):
    result = runner.invoke(app, ["report", "--workdir", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["families"] == {}
    result = runner.invoke(app, ["report", "--workdir", str(tmp_path)])
    assert "No evaluated checkpoints" in result.output

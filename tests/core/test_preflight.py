"""Checks before anything starts: data set, configured architectures, sizes, the store's layout, and the exit codes of `evaluate`."""

from __future__ import annotations

import gc

import pytest
from typer.testing import CliRunner

from ssl_eval.cli import EXIT_NOTHING_EVALUATED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, app
from ssl_eval.config import Config, DataConfig, FamilyConfig
from ssl_eval.pipeline.eval_data import cached_splits
from ssl_eval.pipeline.outcomes import MonitorSummary
from ssl_eval.pipeline.preflight import check_architectures, check_data
from ssl_eval.sources.layout import layout_problems
from tests.helpers import make_store

runner = CliRunner()
DIGITS = ["--dataset", "digits", "--n-eval", "200", "--n-probe-train", "300", "--n-probe-test", "200"]


def _nothing_started(workdir) -> bool:
    return not (workdir / "prefect").exists() and not (workdir / "mlflow.db").exists() and not (workdir / "records").exists()


def test_unknown_data_set_exits_2_before_anything_starts(tmp_path):
    store = make_store(tmp_path / "store", {"simclr": 1})
    result = runner.invoke(app, ["evaluate", str(store), "--workdir", str(tmp_path / "w"), "--dataset", "cifar11"])
    assert result.exit_code == EXIT_USAGE
    assert "unknown data set 'cifar11'" in result.output and "mnist" in result.output and "Nothing was started" in result.output
    assert result.output.count("cifar11") == 1 and result.output.count("error:") == 1  # said once, not per checkpoint
    assert _nothing_started(tmp_path / "w")


def test_data_set_without_its_files_exits_2(tmp_path):
    store = make_store(tmp_path / "store", {"simclr": 1})
    result = runner.invoke(app, ["evaluate", str(store), "--workdir", str(tmp_path / "w"), "--dataset", "cifar10"])
    assert result.exit_code == EXIT_USAGE and "--data-root" in result.output
    assert _nothing_started(tmp_path / "w")


def test_configured_architecture_that_does_not_build_exits_2(tmp_path):
    store = make_store(tmp_path / "store", {"simclr": 1})
    (store / "ssl_eval.toml").write_text('[data]\nname = "digits"\n[families.simclr]\narch = "resnet19"\n')
    result = runner.invoke(app, ["evaluate", str(store), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == EXIT_USAGE and "families.simclr.arch" in result.output and "resnet19" in result.output
    assert _nothing_started(tmp_path / "w")


def test_check_architectures_accepts_the_registry():
    splits = cached_splits(DataConfig(name="digits", n_eval=200, n_probe_train=300, n_probe_test=200))
    check_architectures(Config(families={"a": FamilyConfig(arch="democnn"), "b": FamilyConfig()}), splits)
    with pytest.raises(ValueError, match=r"families\.a\.arch: .*unknown architecture 'nope'"):
        check_architectures(Config(families={"a": FamilyConfig(arch="nope")}), splits)


def test_sizes_beyond_the_data_set_are_warnings_with_the_size_used():
    warnings = check_data(Config(data=DataConfig(name="digits", n_eval=5000, n_probe_train=300, n_probe_test=200)))
    # digits: 1797 images, a 70/30 split -> 540 test images, at most half of them for eval
    assert len(warnings) == 1 and "n_eval=5000" in warnings[0] and "270 images are used" in warnings[0]
    assert check_data(Config(data=DataConfig(name="digits", n_eval=200, n_probe_train=300, n_probe_test=200))) == []


def test_empty_store_says_what_layout_it_expects(tmp_path):
    (tmp_path / "store").mkdir()
    result = runner.invoke(app, ["evaluate", str(tmp_path / "store"), "--workdir", str(tmp_path / "w"), *DIGITS])
    assert result.exit_code == EXIT_USAGE
    assert "found no checkpoint files" in result.output and "<family>/<run>/<checkpoint file>" in result.output


def test_layout_of_a_well_formed_store(tmp_path):
    store = make_store(tmp_path / "store", {"simclr": 2, "mocov2": 1}, runs=2)
    assert layout_problems(store) == (6, [])


def test_store_one_folder_too_deep_is_a_warning(tmp_path):
    store = make_store(tmp_path / "store", {"simclr": 2}, runs=2)
    readable, warnings = layout_problems(store / "simclr")
    assert readable == 4 and len(warnings) == 1
    assert "named like runs (run-0, run-1)" in warnings[0] and f"pass its parent {store}" in warnings[0]


def test_store_one_folder_too_high_is_a_warning(tmp_path):
    store = make_store(tmp_path / "outer" / "store", {"simclr": 2})
    readable, warnings = layout_problems(tmp_path / "outer")
    assert readable == 0 and len(warnings) == 1
    assert "more than two folders below" in warnings[0] and str(store) in warnings[0]


def test_files_at_the_store_root_are_a_warning(tmp_path):
    store = make_store(tmp_path / "store", {"simclr": 1})
    (store / "epoch=05.ckpt").write_bytes(b"x")
    readable, warnings = layout_problems(store)
    assert readable == 1 and "lie directly in" in warnings[0]


def test_layout_warning_is_printed_by_evaluate(tmp_path, monkeypatch):
    store = make_store(tmp_path / "store", {"simclr": 1})
    _fake_run(monkeypatch, embedded=["run-0/run/epoch=00"], failed={})
    result = runner.invoke(app, ["evaluate", str(store / "simclr"), "--workdir", str(tmp_path / "w"), "--quiet", *DIGITS])
    assert result.exit_code == EXIT_OK, result.output
    assert "looks like one family's folder" in result.output
    assert gc.isenabled()  # evaluate pauses garbage collection while it starts up, not after


def _fake_run(monkeypatch, *, embedded, failed):
    import flows.monitor

    def fake(*args, **kwargs):
        return MonitorSummary(
            checkpoints_new_or_stale=len(embedded) + len(failed), families=("simclr",), embedded=tuple(embedded), failed=failed,
            known_failed=(), analyses={}, pooled=None, verdicts={}, tracking_uri=None, tracking_errors={}, dask_workers=(),
        )

    monkeypatch.setattr(flows.monitor, "run_monitor", fake)
    # no flow runs, so no temporary Prefect server either (each start cost a test 10-20 s);
    # tests/integration/test_temporary_server.py checks the server
    import contextlib

    import deployments.server

    monkeypatch.setattr(deployments.server, "temporary_api",
                        lambda *args, **kwargs: contextlib.nullcontext(lambda: None))


@pytest.mark.parametrize(("embedded", "failed", "code"), [
    (["simclr/run-0/a"], {}, EXIT_OK),
    ([], {}, EXIT_OK),  # nothing new
    (["simclr/run-0/a"], {"simclr/run-0/b": "corrupt zip archive"}, EXIT_SOME_FAILED),
    ([], {"simclr/run-0/b": "corrupt zip archive"}, EXIT_NOTHING_EVALUATED),
])
def test_evaluate_exit_codes(tmp_path, monkeypatch, embedded, failed, code):
    store = make_store(tmp_path / "store", {"simclr": 1})
    _fake_run(monkeypatch, embedded=embedded, failed=failed)
    result = runner.invoke(app, ["evaluate", str(store), "--workdir", str(tmp_path / "w"), "--quiet", *DIGITS])
    assert result.exit_code == code, result.output
    if failed:
        assert result.output.count("corrupt zip archive") == 1

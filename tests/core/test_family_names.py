"""A family is the folder the user named: its settings apply, and every surface shows that name.

Its ``[families."<name>"]`` settings apply, and the report, the HTML page and MLflow show that name,
while ids stay escaped where they must be unique (records, arrays, JSON keys, MLflow run keys).
"""

from __future__ import annotations

import io

import pytest

from ssl_eval.analysis import store_family_analysis
from ssl_eval.common.names import display_id, display_name, escape_name, readable_id
from ssl_eval.config import load_config
from ssl_eval.pipeline.embedding import embed_or_record_failure
from ssl_eval.pipeline.evaluation import compute_parts
from ssl_eval.pipeline.planning import plan
from ssl_eval.reporting.report import collect, render_table
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from tests.helpers import TINY_OVERRIDES, make_store

NAMES = ["sim.clr", "_x", "a~2Eb", "", "é x", "x" * 300, "a\x1b[2J\u202e\nb", "bad\udcff", "_summary", "summary"]


def test_display_names_invert_the_escaping_and_readable_ids_stay_unique():
    for name in NAMES:
        shown = display_name(escape_name(name))
        assert shown == name if len(name) < 60 else shown == name[:150] + "…"
    assert display_id("sim~2Eclr/run-0/epoch=01") == "sim.clr/run-0/epoch=01"
    readable = [readable_id(escape_name(n)) for n in NAMES]
    assert len(set(readable)) == len(NAMES) and "_summary" not in readable
    assert readable[:3] == ["sim.clr", "~5Fx", "a~7E2Eb"]


@pytest.mark.slow
def test_family_settings_match_the_folder_name_and_the_name_is_shown(tmp_path, mlflow_store, no_mlflow_figures, capsys):
    from mlflow.tracking import MlflowClient
    from rich.console import Console

    from ssl_eval.cli.startup import check_before_start
    from ssl_eval.integrations.mlflow_mirror import sync_family

    store = make_store(tmp_path / "store", {"sim.clr": 3, "_x": 3})
    (store / "ssl_eval.toml").write_text(
        '[families."sim.clr"]\nprefix = "backbone."\n[families._x]\nprefix = "backbone."\n'
        '[families."sim~2Eclr"]\nmethod = "old"\n[families.typo]\nmethod = "x"\n')
    config = load_config(store=store, **TINY_OVERRIDES)
    assert config.family("sim~2Eclr").prefix == "backbone." and config.family("~5Fx").prefix == "backbone."
    assert config.family("typo").prefix is None  # no folder "typo": defaults
    # a section that matches no family is named, with the fix when it was written as an id
    check_before_start(str(store), config, watching=False)
    err = capsys.readouterr().err
    assert 'warning: [families."sim~2Eclr"] in the configuration matches no family of the store (families: _x, sim.clr); ' \
           'write [families."sim.clr"], the folder\'s own name; its settings apply to nothing.' in err
    assert 'warning: [families."typo"] in the configuration matches no family' in err
    assert "[families._x]" not in err and '[families."sim.clr"]' not in err.replace('write [families."sim.clr"]', "")

    ws = Workspace.at(tmp_path / "w")
    work = plan(discover(store), config, ws, tracking_uri=None)
    for item in work.items:
        assert embed_or_record_failure(item.ref, config, ws).ready
        compute_parts(ws, item.ref.id, list(item.parts), config)
        assert ws.records.get(item.ref.id, "checkpoint")["prefix_source"] == "config"  # the setting applied
    for family in work.families:
        store_family_analysis(ws, family)

    doc = collect(ws)
    assert {k: v["name"] for k, v in doc["families"].items()} == {"sim~2Eclr": "sim.clr", "~5Fx": "_x"}  # JSON: keyed by id
    out = io.StringIO()
    render_table(doc, console=Console(file=out, width=200))
    text = out.getvalue()
    assert "sim.clr:" in text and "_x:" in text and "sim~2Eclr" not in text.split("\n", 1)[0]

    uri = mlflow_store(ws.root / "mlflow.db")
    for family in work.families:
        sync_family(ws, family, tracking_uri=uri)
    client = MlflowClient(uri)
    names = sorted(e.name for e in client.search_experiments())
    assert names == ["Default", "ssl-eval/_summary", "ssl-eval/sim.clr", "ssl-eval/~5Fx"]
    runs = client.search_runs([client.get_experiment_by_name("ssl-eval/~5Fx").experiment_id])
    assert {r.data.tags["family"] for r in runs} == {"_x"} and {r.data.tags["ssl_eval.key"] for r in runs} == {"~5Fx/run-0", "~5Fx/_correlations"}

"""Planning and idempotence in the core: only new or stale work is planned, and two
processes at once never embed the same checkpoint twice."""

from __future__ import annotations

import multiprocessing as mp

from ssl_eval.config import Config
from ssl_eval.embedding import embed_or_record_failure
from ssl_eval.evaluation import compute_part
from ssl_eval.planning import PARTS, plan
from ssl_eval.storage.checkpoints import discover
from ssl_eval.workspace import Workspace
from tests.helpers import write_checkpoint


def _evaluate_all(refs, config, ws):
    for ref in refs:
        embed_or_record_failure(ref, config, ws)
        for part in PARTS:
            compute_part(ws, ref.id, part, config)


def test_plan_new_cached_config_change_and_rewrite(tiny_store, tiny_config, tmp_path):
    ws = Workspace.at(tmp_path / "w")
    refs = discover(tiny_store)
    first = plan(refs, tiny_config, ws, tracking_uri=None)
    assert len(first.items) == 6 and all(i.embed and i.parts == PARTS for i in first.items)
    assert first.families == ("simclr", "simsiam")

    _evaluate_all(refs, tiny_config, ws)
    from ssl_eval.analysis import analyze_family

    for family in ("simclr", "simsiam"):
        analyze_family(ws, family)
    assert plan(refs, tiny_config, ws, tracking_uri=None).empty

    # a metric option changed: every part is stale, nothing needs embedding
    changed = Config.model_validate({**tiny_config.model_dump(), "metrics": {"k": 4}})
    stale = plan(refs, changed, ws, tracking_uri=None)
    assert len(stale.items) == 6 and not any(i.embed for i in stale.items)

    # a rewritten file counts as new
    write_checkpoint(tiny_store / "simclr" / "run-0" / "epoch=01.ckpt", epoch=1, seed=12345)
    rewritten = plan(discover(tiny_store), tiny_config, ws, tracking_uri=None)
    assert [(i.ref.id, i.embed) for i in rewritten.items] == [("simclr/run-0/epoch=01", True)]

    # MLflow never synced: every family is due for its mirror
    assert plan(refs, tiny_config, ws, tracking_uri="sqlite:///x.db").families == ("simclr", "simsiam")


def test_empty_store_plans_nothing(tmp_path, tiny_config):
    ws = Workspace.at(tmp_path / "w")
    (tmp_path / "store").mkdir()
    assert plan(discover(tmp_path / "store"), tiny_config, ws, tracking_uri=None).empty


def _embed_in_process(args):
    store, workdir, config_json = args
    config = Config.model_validate_json(config_json)
    ref = discover(store)[0]
    return embed_or_record_failure(ref, config, Workspace.at(workdir))["status"]


def test_two_processes_never_embed_the_same_checkpoint_twice(tmp_path, tiny_config):
    write_checkpoint(tmp_path / "store" / "simclr" / "run-0" / "epoch=00.ckpt", epoch=0, seed=0)
    args = (str(tmp_path / "store"), str(tmp_path / "w"), tiny_config.model_dump_json())
    with mp.get_context("spawn").Pool(2) as pool:
        statuses = pool.map(_embed_in_process, [args, args])
    assert sorted(statuses) == ["cached", "embedded"]

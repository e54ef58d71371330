"""Strict JSON (ssl_eval/common/strict_json.py): no bare NaN/Infinity in any record or document.

Every record and document is written with null instead, readers that need a float get NaN back, and
records written before the rule (bare NaN) still load.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ssl_eval.analysis import family_rows, store_family_analysis, stored_analysis
from ssl_eval.common import strict_json
from ssl_eval.results.local_records import LocalRecordFiles
from ssl_eval.results.records import open_record_files
from ssl_eval.results.url_records import UrlRecordFiles
from ssl_eval.results.workspace import Workspace
from tests.helpers import synthetic_workspace


def _no_constants(name):
    raise ValueError(f"non-strict JSON constant {name}")


def strict_loads(text):
    """What a strict parser (JavaScript's JSON.parse, jq) accepts: no NaN/Infinity tokens."""
    return json.loads(text, parse_constant=_no_constants)


def test_encode_writes_every_non_finite_float_as_null():
    doc = {"nan": math.nan, "inf": [math.inf, -math.inf, 1.5], "np": np.float32("nan"), "arr": np.array([1.0, np.inf]),
           "int": np.int64(3), "none": None, 2: "key"}
    text = strict_json.encode(doc, sort_keys=False)
    assert strict_loads(text) == {"nan": None, "inf": [None, None, 1.5], "np": None, "arr": [1.0, None], "int": 3,
                                  "none": None, "2": "key"}


def test_encode_keeps_finite_documents_byte_identical_to_json():
    """Digests (config, rows) hash this text: it must not change for finite values."""
    doc = {"b": [1, 2.5, "x", None, True], "a": {"k": 0.1}}
    assert strict_json.encode(doc, sort_keys=True) == json.dumps(doc, sort_keys=True)


def test_encode_names_a_type_it_cannot_store():
    with pytest.raises(TypeError, match="set"):
        strict_json.encode({"s": {1, 2}})


def test_readers_turn_null_back_into_nan_except_kept_keys():
    read = strict_json.nan_for_null({"spearman": None, "pick": None, "n": 4.0}, keep=("pick",))
    assert math.isnan(read["spearman"]) and read["pick"] is None and read["n"] == 4.0
    assert math.isnan(strict_json.float_or_nan(None)) and strict_json.float_or_nan(0.5) == 0.5


def test_old_text_with_bare_nan_still_loads():
    assert math.isnan(strict_json.decode('{"x": NaN}')["x"])
    assert strict_json.decode('{"x": -Infinity}')["x"] == -math.inf


@pytest.mark.parametrize("root", ["local", "memory://strict-json-records"])
def test_record_with_nan_is_stored_strict_and_read_back_as_null(tmp_path, root):
    store = open_record_files(tmp_path / "records" if root == "local" else root)
    store.put("fam/run/ck", "metrics-x", {"values": {"a": math.nan, "b": np.float64(0.25), "c": -math.inf}})
    if isinstance(store, LocalRecordFiles):
        text = store.path("fam/run/ck", "metrics-x").read_text()
    else:
        assert isinstance(store, UrlRecordFiles)
        text = store._fs.cat_file(store._key("fam/run/ck", "metrics-x")).decode()
    assert strict_loads(text)["values"] == {"a": None, "b": 0.25, "c": None}
    assert store.get("fam/run/ck", "metrics-x") == {"values": {"a": None, "b": 0.25, "c": None}}


def _local(ws: Workspace) -> LocalRecordFiles:
    """The work dir's records, in its own folder (synthetic_workspace has no results URL)."""
    assert isinstance(ws.records, LocalRecordFiles)
    return ws.records


def _nan_metric(ws, cid):
    return {"fingerprint": f"fp-{cid}", "values": {"norm_std": math.nan, "uniformity": -1.0}, "flags": []}


def test_nan_metric_round_trips_through_rows_and_analysis(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=4, runs=1)
    cid = "simclr/run-0/epoch=00"
    ws.records.put(cid, "metrics-geometry", _nan_metric(ws, cid))
    strict_loads(_local(ws).path(cid, "metrics-geometry").read_text())
    (row, *_) = family_rows(ws, "simclr")
    assert math.isnan(row["metrics"]["norm_std"]) and row["metrics"]["uniformity"] == -1.0

    # uniformity is the same at every checkpoint that has it: its correlations are undefined
    for other in ("simclr/run-0/epoch=01", "simclr/run-0/epoch=02", "simclr/run-0/epoch=03"):
        ws.records.put(other, "metrics-geometry", _nan_metric(ws, other))
    fresh = store_family_analysis(ws, "simclr")
    text = _local(ws).path("simclr", "correlations").read_text()
    assert "NaN" not in text and "Infinity" not in text
    stored_raw = strict_loads(text)["metrics"]["uniformity"]
    assert stored_raw["spearman"] is None and stored_raw["pick"] is not None
    stored = stored_analysis(ws, "simclr")
    assert math.isnan(fresh.metrics["uniformity"]["spearman"])
    assert math.isnan(stored.metrics["uniformity"]["spearman"])
    assert stored.metrics["uniformity"]["pick"] == fresh.metrics["uniformity"]["pick"]
    assert stored.metrics["rankme"]["spearman"] == pytest.approx(fresh.metrics["rankme"]["spearman"])


def test_records_written_with_bare_nan_by_older_versions_still_load(tmp_path):
    ws = synthetic_workspace(tmp_path / "w", epochs=4, runs=1)
    cid = "simclr/run-0/epoch=00"
    old = json.dumps(_nan_metric(ws, cid))  # the old writer: bare NaN
    assert "NaN" in old
    _local(ws).path(cid, "metrics-geometry").write_text(old)
    (row, *_) = family_rows(ws, "simclr")
    assert math.isnan(row["metrics"]["norm_std"])
    fresh = store_family_analysis(ws, "simclr")
    _local(ws).path("simclr", "correlations").write_text(json.dumps(fresh.stored()))
    assert math.isnan(stored_analysis(ws, "simclr").metrics["uniformity"]["spearman"])

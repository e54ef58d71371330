"""Workspace.check_writable with a ``file://`` results URL: a local folder.

It is created when missing (as a plain local work dir is), and named when it cannot be written.
"""

from __future__ import annotations

import pytest

from ssl_eval.common.errors import WorkdirError
from ssl_eval.results.workspace import Workspace


def test_file_url_results_folder_that_does_not_exist_yet_is_created(tmp_path):
    results = tmp_path / "not" / "yet" / "results"
    ws = Workspace.at(tmp_path / "work", results_url=f"file://{results}")
    ws.check_writable()
    assert (results / "records").is_dir() and (results / "embeddings.zarr").is_dir()
    assert list((results / "records").iterdir()) == []  # the write probe is gone
    ws.records.put("fam/run/ck", "probe", {"values": {"linear_acc": 0.5}})
    assert (results / "records" / "fam" / "run" / "ck" / "probe.json").is_file()


def test_file_url_results_folder_that_cannot_be_made_is_named(tmp_path):
    (tmp_path / "a-file").write_text("")
    ws = Workspace.at(tmp_path / "work", results_url=f"file://{tmp_path}/a-file/results")
    with pytest.raises(WorkdirError, match=r"cannot write .*a-file/results/records .*Nothing was started\."):
        ws.check_writable()

"""Tasks run on threads of one process: they never write the process environment.

A task reads credentials where it uses them (docs/reliability.md, "Tasks on threads").
"""

from __future__ import annotations

import os

import pytest

import ssl_eval.integrations.mlflow_mirror as mirror
from ssl_eval.common.urls import HELD_URI_ENV
from ssl_eval.results.workspace import Workspace

SECRET = "http://alice:s3cret@127.0.0.1:9/mlflow?api_token=T0KEN"


class _Stop(Exception):
    pass


@pytest.mark.parametrize("held", [False, True], ids=["passed-whole", "held-by-the-cli"])
def test_the_mlflow_task_reads_the_credentials_where_it_uses_them_and_never_sets_them(held, tmp_path, monkeypatch):
    monkeypatch.delenv(HELD_URI_ENV, raising=False)
    if held:  # the CLI held it (in its own main thread, before any task) and passed the redacted form
        monkeypatch.setenv(HELD_URI_ENV, SECRET)
    given = "http://***@127.0.0.1:9/mlflow?api_token=***" if held else SECRET
    used = []

    def client(uri):
        used.append(uri)
        raise _Stop

    monkeypatch.setattr(mirror, "MlflowClient", client)
    before = dict(os.environ)
    with pytest.raises(_Stop):
        mirror.sync_family(Workspace.at(tmp_path / "w"), "simclr", tracking_uri=given)
    assert used == [SECRET]  # the client gets the whole URI
    assert dict(os.environ) == before  # and the process environment is as it was

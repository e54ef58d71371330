"""The MLflow UI app of `ssl-eval ui` (ssl_eval/integrations/mlflow_ui.py).

MLflow's own pages, and the index page with the browser defaults that open the classic view. In a
real browser: tests/integration/test_ui_browser.py.
"""

from __future__ import annotations

import json
import re

from mlflow.server import app as flask_app

from ssl_eval.integrations.mlflow_ui import DEFAULTS_SCRIPT, UI_DEFAULTS, with_ui_defaults


def test_the_defaults_script_goes_first_in_the_head_once():
    page = b"<!doctype html><html><head><title>MLflow</title><script src='main.js'></script></head><body></body></html>"
    once = with_ui_defaults(page)
    assert once.index(DEFAULTS_SCRIPT) == page.index(b"<head>") + len(b"<head>")
    assert once.index(DEFAULTS_SCRIPT) < once.index(b"main.js")  # before the app reads localStorage
    assert with_ui_defaults(once) == once
    assert with_ui_defaults(b"no head here") == b"no head here"


def test_the_script_sets_only_absent_keys_to_the_classic_view():
    script = DEFAULTS_SCRIPT.decode()
    defaults = json.loads(re.search(r"const d=(\{.*?\});", script).group(1))
    assert defaults == UI_DEFAULTS and defaults["mlflow.workflowType_v1"] == "machine_learning"
    assert "getItem(k)===null" in script  # a person's own choice stays


def test_mlflow_serves_its_index_with_the_defaults_and_everything_else_unchanged():
    client = flask_app.test_client()
    index = client.get("/")
    assert index.status_code == 200 and index.mimetype == "text/html"
    body = index.get_data()
    assert body.count(DEFAULTS_SCRIPT) == 1 and b"static-files/" in body  # MLflow's own page, with the script
    assert "ETag" not in index.headers and index.headers["Cache-Control"] == "no-cache"
    manifest = client.get("/static-files/manifest.json")
    assert manifest.status_code == 200 and DEFAULTS_SCRIPT not in manifest.get_data()


def test_the_entry_point_mlflow_loads_is_this_app():
    import importlib
    import tomllib
    from pathlib import Path

    from ssl_eval.cli.ui import MLFLOW_UI_APP

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["mlflow.app"][MLFLOW_UI_APP]
    module, attribute = target.split(":")
    from mlflow.server.fastapi_app import app as mlflow_asgi_app

    assert getattr(importlib.import_module(module), attribute) is mlflow_asgi_app  # MLflow's own ASGI app, not a copy

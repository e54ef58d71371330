"""The MLflow UI as ``ssl-eval ui`` serves it: MLflow's own server app, opening in the classic "Model training" view.

MLflow 3.17's UI no longer reads the ``mlflow.experimentKind`` experiment tag: it opens every
experiment in the view its sidebar switch holds, which it keeps in the browser's
localStorage and which starts as "GenAI" (empty Traces, Latency and Token panels). The page
served here sets that switch to "Model training" and marks the MLflow Assistant panel as
already shown, both only where the browser holds no choice yet, so a person's own choice
wins and the switch still works. Nothing else changes: MLflow serves every request as usual.

``mlflow ui --app-name ssl-eval`` loads :data:`app` (the ``mlflow.app`` entry point in
pyproject.toml). Not a task: it lives beside the tasks because the core never imports mlflow.
"""

from __future__ import annotations

import json

from flask import Response, request
from mlflow.server import app as flask_app
from mlflow.server.fastapi_app import app  # noqa: F401  (the ASGI app uvicorn serves: MLflow's own)

# The browser settings the UI reads at start (its localStorage keys are "<key>_v<version>",
# JSON values); set only where absent.
UI_DEFAULTS = {
    "mlflow.workflowType_v1": "machine_learning",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
}
DEFAULTS_SCRIPT = (
    "<script>try{const d=%s;for(const k in d){if(localStorage.getItem(k)===null)"  # noqa: UP031  (JavaScript's braces stay literal)
    "localStorage.setItem(k,JSON.stringify(d[k]))}}catch(e){}</script>" % json.dumps(UI_DEFAULTS, allow_nan=False)
).encode()


def with_ui_defaults(page: bytes) -> bytes:
    """The UI's index page with :data:`DEFAULTS_SCRIPT` first in its head.

    It must run before the app's own scripts; the page is unchanged when it has no ``<head>``.

    Returns:
        The page's bytes with the script inserted.
    """
    head = page.find(b"<head>")
    if head < 0 or DEFAULTS_SCRIPT in page:
        return page
    at = head + len(b"<head>")
    return page[:at] + DEFAULTS_SCRIPT + page[at:]


@flask_app.after_request
def _index_with_ui_defaults(response: Response) -> Response:
    if request.path != "/" or response.status_code != 200 or response.mimetype != "text/html":  # `ssl-eval ui` sets no static prefix
        return response
    response.direct_passthrough = False
    response.set_data(with_ui_defaults(response.get_data()))
    for header in ("ETag", "Last-Modified"):  # not the file's: a cached plain page must not be reused
        response.headers.pop(header, None)
    response.headers["Cache-Control"] = "no-cache"
    return response


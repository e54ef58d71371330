"""The ``ssl-eval`` command line.

Flows (and so prefect and mlflow) are imported lazily inside the commands that need them, after
the work dir's environment is set.

One module per part: :mod:`~ssl_eval.cli.application` (the typer app, exit codes, how a command
fails), :mod:`~ssl_eval.cli.options` (options several commands share),
:mod:`~ssl_eval.cli.workdir` (the store and work dir as the commands take them),
:mod:`~ssl_eval.cli.startup` (what evaluate and serve check and do before the flow runs), and the
commands: :mod:`~ssl_eval.cli.demo` (``make-demo-store``), :mod:`~ssl_eval.cli.monitor`
(``evaluate``, ``serve``), :mod:`~ssl_eval.cli.results` (``report``, ``metrics``) and
:mod:`~ssl_eval.cli.ui` (``ui``). They are imported here in the order ``--help`` lists them.

Layer: the top; it may import anything, flows and deployments included (lazily).
"""

from __future__ import annotations

import gc

from ssl_eval.cli import demo, monitor, results, ui  # noqa: F401  (each registers its commands on app)
from ssl_eval.cli.application import (
    EXIT_INTERRUPTED,
    EXIT_NOTHING_EVALUATED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    app,
)

__all__ = ["app", "main", "EXIT_OK", "EXIT_NOTHING_EVALUATED", "EXIT_USAGE", "EXIT_SOME_FAILED", "EXIT_INTERRUPTED"]


def main() -> None:
    """The ``ssl-eval`` console script: run the typer app on ``sys.argv``, then let the process end quickly.

    The interpreter's last garbage collection walks every object still alive (torch's, Prefect's,
    Dask's, MLflow's): 2.3 s after an idle ``evaluate`` had printed its answers, 3 to 5 s under
    load (benchmarks/end_to_end.py, "after the flow"). Whatever the command left is freed at exit
    anyway; frozen, those objects are skipped by that collection (atexit handlers, flushing and
    closing run as before). Only here, in the console script: an in-process caller of ``app``
    (tests, a notebook) keeps collecting as usual.
    """
    try:
        app()
    finally:
        gc.freeze()

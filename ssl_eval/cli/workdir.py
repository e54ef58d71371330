"""The checkpoint store and the work dir as the commands take them.

Locations are checked, credentials refused in URLs, and the work dir created and checked before a
run writes to it.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ssl_eval.cli.application import fail
from ssl_eval.common.urls import redact
from ssl_eval.results.workspace import DEFAULT_WORKDIR, Workspace

__all__ = ["refuse_credentials", "store_location", "open_workspace", "use_workdir", "check_writable", "require_existing_workdir",
           "hold_for_serve", "note_serving"]


def refuse_credentials(url: str | None, what: str) -> None:
    """Refuse a store or results URL that carries credentials, with a redacted message.

    Both travel as flow parameters, which Prefect keeps in its database.

    Args:
        url: the URL (or path, or None: nothing to check).
        what: what the URL is, for the message (``checkpoint store URL``).

    Raises:
        ValueError: the URL carries a user:password or a token parameter.
    """
    from ssl_eval.common.urls import has_credentials

    if has_credentials(url):
        raise ValueError(
            f"the {what} {redact(url)} carries credentials (user:password@ or a token parameter); "
            "give them through the environment instead (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "FSSPEC_<PROTOCOL>_<KEY>, ...): they never become flow parameters."
        )


def store_location(store: str) -> str:
    """A local store as an absolute path (it must be a folder); a URL as given.

    Args:
        store: the STORE argument.

    Returns:
        The absolute folder, or the URL without a trailing slash.

    Raises:
        FileNotFoundError: a local store that is not a folder.
    """
    from ssl_eval.common.urls import is_url

    if is_url(store):
        refuse_credentials(store, "checkpoint store URL")
        return store.rstrip("/")
    path = Path(store)
    if not path.is_dir():
        raise FileNotFoundError(
            f"checkpoint store {store} does not exist or is not a folder; pass the folder that holds <family>/<run>/<checkpoint> files."
        )
    return str(path.resolve())


def open_workspace(workdir: Path | None, results_url: str | None = None, *, writing: bool = False) -> Workspace:
    """The work dir (created).

    For reading, the process is pointed at it at once; for a run (``writing``), only once
    the configuration is valid and every place it writes can be written
    (:func:`check_writable`), so a refused run changes nothing.

    Args:
        workdir: --workdir; None: $SSL_EVAL_WORKDIR, else ./.ssl_eval.
        results_url: --results-url; None keeps the results in the work dir.
        writing: True for a run (evaluate, serve).

    Returns:
        The :class:`Workspace`; a bad URL or a work dir that cannot be created exits 2.
    """
    from ssl_eval.common.errors import WorkdirError
    from ssl_eval.common.urls import install_log_redaction

    install_log_redaction()
    try:
        refuse_credentials(results_url, "results URL (--results-url)")
        ws = Workspace.at(workdir, results_url=results_url)
    except ValueError as exc:
        fail(str(exc))
    except WorkdirError as exc:  # the work dir itself cannot be created
        fail(f"the work dir cannot be used: {exc}")
    if not writing:
        use_workdir(ws)
    return ws


def use_workdir(ws: Workspace) -> None:
    """Point this process at the work dir's Prefect home (variables already set win).

    Args:
        ws: the work dir.
    """
    for key, value in ws.runtime_env().items():
        os.environ.setdefault(key, value)


def check_writable(ws: Workspace) -> None:
    """Check that every place a run writes can be written, else exit 2 naming the path and why.

    Called once the configuration is known to be valid and before anything starts.

    Args:
        ws: the work dir (and results URL) the run writes to.
    """
    from ssl_eval.common.errors import WorkdirError

    try:
        ws.check_writable()
    except WorkdirError as exc:
        fail(f"the work dir cannot be used: {exc}")
    use_workdir(ws)


def require_existing_workdir(workdir: Path | None, results_url: str | None = None) -> None:
    """Refuse a work dir that does not exist (exit 2) for the commands that only read.

    ``report`` and ``ui`` do not create an empty one: a mistyped --workdir is an error, not an empty
    report.

    Args:
        workdir: --workdir; None: $SSL_EVAL_WORKDIR, else ./.ssl_eval.
        results_url: --results-url; with one, the results need no local work dir.
    """
    if results_url:
        return
    path = Path(workdir or os.environ.get("SSL_EVAL_WORKDIR", DEFAULT_WORKDIR))
    if not path.is_dir():
        fail(f"work dir {path} does not exist; pass the --workdir that `ssl-eval evaluate` wrote to "
             f"(default ./{DEFAULT_WORKDIR} in the folder it ran in).")


def hold_for_serve(ws: Workspace, ctx: typer.Context) -> None:
    """Hold the work dir for this ``serve`` until the command ends, or exit 2 if another serve holds it.

    The lock is ssl_eval/results/serve_lock.py; the message names the serve that holds it (pid,
    command, since when).

    Args:
        ws: the work dir.
        ctx: the command's context, which gives the lock back when the command ends, however it ends.
    """
    from ssl_eval.results.serve_lock import WorkdirServed, hold_serve_lock

    try:
        ctx.with_resource(hold_serve_lock(ws.root))
    except WorkdirServed as exc:
        fail(f"{exc}\nNothing was started.")
    except OSError as exc:
        fail(f"the work dir cannot be used: cannot write its serve lock in {ws.root / 'locks'} ({exc}). Nothing was started.")


def note_serving(ws: Workspace) -> None:
    """Tell ``evaluate`` that a serve holds its work dir.

    The run goes on beside it (each unit of work is done once) and may wait for work that serve's
    run is doing.

    Args:
        ws: the work dir.
    """
    from ssl_eval.results.serve_lock import serving

    holder = serving(ws.root)
    if holder is not None:
        typer.echo(f"note: ssl-eval serve, {holder.describe()}, also serves this work dir; this run goes on beside it "
                   "(each checkpoint is embedded and measured once; this run may wait for work of that serve's run).", err=True)

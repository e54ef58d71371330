"""A migrated, empty Prefect database for a new work dir's server to start from.

A server on a new sqlite database spends most of its start creating and migrating it (35 s to
healthy against 16 s on an existing one, 2 cores). The first temporary server of each Prefect
version saves its database once healthy, before any flow run (sqlite's online backup: Prefect's
own tables and block types, nothing of the user's); later servers on a work dir without a
database start from a copy, and Prefect's migration check then finds nothing to do. The
template lives in ``SSL_EVAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/ssl-eval``, else
``~/.cache/ssl-eval``; nothing happens when ``PREFECT_API_DATABASE_CONNECTION_URL`` names
another database, and a failed copy only costs the time it would have saved
(``ssl_eval.common.sqlite_templates``, which keeps MLflow's template too).
"""

from __future__ import annotations

import os
from pathlib import Path

from ssl_eval.common import sqlite_templates

__all__ = ["database", "save_template", "seed", "template_path"]


def template_path() -> Path:
    """Where the database template of the installed Prefect version lives.

    Returns:
        The template's path (it may not exist yet).
    """
    return sqlite_templates.template_path("prefect")


def database(home: Path | None = None) -> Path | None:
    """The sqlite file of a server started with this environment.

    Args:
        home: the server's PREFECT_HOME (default: this process's).

    Returns:
        ``prefect.db`` in ``home`` (it may not exist yet); None when another database is configured.
    """
    if os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL"):
        return None
    return Path(home or os.environ.get("PREFECT_HOME") or Path.home() / ".prefect") / "prefect.db"


def seed(home: Path | None = None) -> bool:
    """Give a server about to start on a new database a copy of the template.

    Args:
        home: the server's PREFECT_HOME (default: this process's).

    Returns:
        Whether it was seeded (False: the database exists, no template yet, or the copy failed).
    """
    db = database(home)
    return db is not None and sqlite_templates.copy_template(template_path(), db)


def save_template(db: Path | None = None) -> None:
    """Save the database of a server that just became healthy as the template, unless one exists.

    Call it before the first flow run: what the database holds then is Prefect's own.

    Args:
        db: the server's sqlite file (default: :func:`database`).
    """
    db = db or database()
    if db is not None:
        sqlite_templates.save_template(db, template_path())

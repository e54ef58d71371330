"""Migrated, empty sqlite databases kept in ssl-eval's cache, for new work dirs to start from.

Prefect's server and MLflow's tracking store both spend seconds creating and migrating a new
sqlite database (Prefect 35 s to a healthy server on two cores, MLflow 2.6 s) and
milliseconds opening an existing one. The first new database of each version is saved here
right after it is made (sqlite's online backup, before anything of the user's is in it); a
later new database starts as a copy, and the owner's migration check finds nothing to do.
The cache is ``SSL_EVAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/ssl-eval``, else
``~/.cache/ssl-eval``; deleting it only costs the time it saves. A failed copy or save is
silent, and a template sqlite cannot read is deleted: the owner then makes its database as it
would have without the cache.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from importlib.metadata import version
from pathlib import Path

__all__ = ["cache_dir", "copy_template", "save_template", "template_path"]


def cache_dir() -> Path:
    """ssl-eval's cache folder (it may not exist yet).

    Returns:
        ``SSL_EVAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/ssl-eval``, else ``~/.cache/ssl-eval``.
    """
    root = os.environ.get("SSL_EVAL_CACHE_DIR") or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssl-eval")
    return Path(root)


def template_path(package: str) -> Path:
    """Where the template of the installed ``package`` (its owner: prefect, mlflow) lives.

    Args:
        package: the distribution whose database it is; its version is part of the name.

    Returns:
        ``<cache>/<package>-<version>.db`` (it may not exist yet).
    """
    return cache_dir() / f"{package}-{version(package)}.db"


def copy_template(template: Path, db: Path) -> bool:
    """Give a database about to be created a copy of ``template``, whole or not at all.

    Args:
        template: the saved template.
        db: where the new database goes.

    Returns:
        Whether it was copied (False: ``db`` exists, no template yet, or the copy failed).
    """
    if db.exists() or not template.is_file():
        return False
    if not _readable(template):  # a damaged cache file is dropped, not copied into every new work dir
        with contextlib.suppress(OSError):
            template.unlink()
        return False
    partial = db.with_name(f"{db.name}.{os.getpid()}.seeding")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, partial)
        os.replace(partial, db)  # its owner never opens half a copy
        return True
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        return False


def save_template(db: Path, template: Path) -> None:
    """Save a just-made database as ``template``, unless one exists.

    Call it before anything of the user's is written: what the database holds then is its
    owner's own tables and defaults.

    Args:
        db: the new database (it may be open elsewhere: the backup is consistent).
        template: where the template goes.
    """
    if template.exists() or not db.is_file():
        return
    partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(db)) as source, contextlib.closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)
        os.replace(partial, template)
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def _readable(template: Path) -> bool:
    """Whether sqlite reads ``template`` as a sound database with tables (its quick check), opened read-only."""
    try:
        with contextlib.closing(sqlite3.connect(f"{template.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            tables = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            return bool(tables) and connection.execute("PRAGMA quick_check").fetchone() == ("ok",)
    except sqlite3.Error:
        return False

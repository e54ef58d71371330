"""The migrated Prefect database template (deployments/database_template.py) on plain sqlite files.

tests/integration/test_temporary_server.py starts real servers from it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from deployments import database_template


def _sqlite(path: Path, value: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num TEXT)")
        db.execute("INSERT INTO alembic_version VALUES (?)", (value,))


def _value(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]


@pytest.fixture
def places(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_EVAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "first"))
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    return tmp_path


def test_first_server_saves_later_new_homes_start_from_it(places):
    template = database_template.template_path()
    assert template.parent == places / "cache" and "prefect-" in template.name
    assert not database_template.seed()  # no template yet: the server makes its own database
    (places / "first").mkdir()
    _sqlite(places / "first" / "prefect.db", "head-1")
    database_template.save_template()
    assert _value(template) == "head-1"
    assert list(template.parent.iterdir()) == [template]  # no partial file left behind

    assert database_template.seed(places / "second")
    assert _value(places / "second" / "prefect.db") == "head-1"
    # an existing database is never replaced, and an existing template never overwritten
    _sqlite(places / "third.db", "head-2")
    (places / "second" / "prefect.db").write_bytes((places / "third.db").read_bytes())
    assert not database_template.seed(places / "second")
    assert _value(places / "second" / "prefect.db") == "head-2"
    database_template.save_template()
    assert _value(template) == "head-1"


def test_another_configured_database_or_an_unwritable_cache_changes_nothing(places, monkeypatch):
    (places / "first").mkdir()
    _sqlite(places / "first" / "prefect.db", "head-1")
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://db.example/prefect")
    database_template.save_template()
    assert not database_template.template_path().exists()
    assert not database_template.seed(places / "second") and not (places / "second").exists()

    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL")
    (places / "cache").write_text("a file where the cache folder should be")
    database_template.save_template()  # only the time it would have saved is lost
    assert not database_template.seed(places / "second")

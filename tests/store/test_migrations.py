from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import inspect

from appliance.config import Settings
from appliance.store import migrate
from appliance.store.db import Database


def test_migrations_build_every_table_from_an_empty_database(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    db = Database(settings.database_url)
    assert migrate.current_revision(db.engine) is None
    before, after = migrate.upgrade(db.engine)
    assert (before, after) == (None, migrate.head_revision())
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "repository",
        "task",
        "taskevent",
        "checkpoint",
        "audit_record",
        "user",
        "api_token",
    } <= tables
    # A second run is a no-op.
    assert migrate.upgrade(db.engine) == (after, after)
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_audit_table_refuses_updates_and_deletes(db: Database, settings: Settings) -> None:
    from appliance.store import audit

    with db.write() as s:
        audit.append(s, actor="a", action="x", subject="y")
    raw = sqlite3.connect(settings.data_dir / "appliance.db")
    for statement in ("UPDATE audit_record SET actor='b'", "DELETE FROM audit_record"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(statement)
    raw.close()


def test_models_and_migrations_agree(db: Database) -> None:
    """A model changed without a migration fails here, not on a user's upgrade."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []

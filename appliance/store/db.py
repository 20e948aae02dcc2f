"""Engine and sessions: SQLite in WAL mode with foreign keys and a busy timeout.

Reads use ordinary (deferred) transactions, so many readers run side by side.
Writes go through :meth:`Database.write`, which opens the transaction with
``BEGIN IMMEDIATE``: SQLite then takes the write lock up front (waiting up to the
busy timeout) instead of failing when a read-then-write races another writer.
The audit chain relies on that: reading the last hash and appending the next
record happen under one lock. Once a write that appended audit records has
committed, the new head is anchored in a file (see :mod:`appliance.store.audit`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

from appliance.store import audit

log = logging.getLogger(__name__)

_IMMEDIATE = "appliance_immediate"


def create_db_engine(url: str, *, busy_timeout_ms: int = 5000) -> Engine:
    is_sqlite = url.startswith("sqlite")
    connect_args: dict[str, Any] = {"check_same_thread": False} if is_sqlite else {}
    pool: dict[str, Any] = (
        # SQLite connections are cheap; size the pool past the worker threads that may
        # each hold one (the API's thread pool, the runner's executor), so requests
        # never wait on the pool itself.
        {"pool_size": 32, "max_overflow": 64, "pool_timeout": 10}
        if is_sqlite and ":memory:" not in url and url != "sqlite://"
        else {}
    )
    engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not is_sqlite, **pool)
    if is_sqlite:
        _configure_sqlite(engine, busy_timeout_ms)
    return engine


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Owns the engine; hands out read and write sessions."""

    def __init__(
        self, url: str, *, busy_timeout_ms: int = 5000, audit_anchor: Path | None = None
    ) -> None:
        self.url = url
        #: the audit head anchor file; by default ``audit-head`` beside the database file
        self.audit_anchor = audit_anchor or audit.anchor_path(url)
        self.engine = create_db_engine(url, busy_timeout_ms=busy_timeout_ms)
        self._write_engine = self.engine.execution_options(**{_IMMEDIATE: True})
        # Writers of this process queue here, promptly and in order, instead of in
        # SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and lets
        # a burst of writers starve one another. Other processes (the CLI) still meet
        # the busy timeout.
        self._write_lock = threading.Lock()

    def session(self) -> Session:
        """A session for reading (a write through it may hit SQLITE_BUSY)."""
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any error."""
        with self._write_lock, Session(self._write_engine, expire_on_commit=False) as session:
            with session.begin():
                yield session
            self._anchor(session)  # committed: the anchor may follow, never lead

    def _anchor(self, session: Session) -> None:
        head = audit.take_appended_head(session)
        if head is None or self.audit_anchor is None:
            return
        try:
            audit.write_anchor(self.audit_anchor, head)
        except OSError as exc:  # the change is committed; the anchor lags until the next one
            log.warning("could not write the audit head anchor %s: %s", self.audit_anchor, exc)

    def dispose(self) -> None:
        self.engine.dispose()

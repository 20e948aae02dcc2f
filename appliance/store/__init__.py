"""Persistence: SQLModel on SQLite (WAL), Alembic migrations, the hash-chained audit log.

Knows no HTTP. Functions take a session and keyword arguments and work inside the
caller's transaction.
"""

"""Alembic environment: run by appliance.store.migrate with a connection attached."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import appliance.store.models  # noqa: F401 - registers the tables on SQLModel.metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # plain `alembic` CLI use, e.g. autogenerate during development
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

"""Alembic environment: run with the connection ``Database.upgrade`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from callbridge.store.models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    # `alembic` run by hand with -x url=... (used when writing new migrations).
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///var/callbridge.sqlite3")
    with create_engine(url).begin() as own_connection:
        context.configure(
            connection=own_connection, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()

"""Alembic environment: runs on the connection handed in by :func:`eventlog.db.upgrade`."""

from __future__ import annotations

from alembic import context

from eventlog.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - alembic CLI use; we always pass a connection
    raise RuntimeError("run migrations through `omics-events db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

"""Alembic environment: migrations run on the connection :func:`serve.store.open_store` passes in.

Run by hand with ``alembic -c serve/migrations/alembic.ini upgrade head`` and ``CAMID_DATABASE_URL``
set, or (normally) by the server on start.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from serve.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("CAMID_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set CAMID_DATABASE_URL (e.g. sqlite:///var/camid.sqlite3) to run migrations")
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)

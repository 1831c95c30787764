"""Alembic's entry point, run by leadscore._store.migrate (no alembic.ini).

The caller passes an open connection in `config.attributes["connection"]`;
the migrations run in that connection's transaction. For developers running
Alembic by hand (`alembic revision --autogenerate`), a `sqlalchemy.url` main
option works too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from leadscore._store.database import open_database
from leadscore._store.tables import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: later migrations copy tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("leadscore migrations run against a database, not as SQL scripts")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no connection and no sqlalchemy.url to migrate")
    database = open_database(url)
    try:
        with database.begin() as opened:
            _run(opened)
    finally:
        database.dispose()


_main()

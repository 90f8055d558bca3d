"""Alembic environment: runs on the connection `Store.migrate()` hands over.

`Store.migrate()` opens a transaction, puts its connection in
`config.attributes["connection"]` and calls `alembic.command.upgrade`; the migrations then run
inside that one transaction (PostgreSQL and SQLite both have transactional DDL), so a failed
migration leaves nothing behind. Used from the alembic CLI instead (`-x url=...` or
`sqlalchemy.url`), it builds its own engine. Offline mode (`--sql`) renders the SQL.
"""

import sqlalchemy as sa
from alembic import context

from gridmarket.adapters.schema import metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set sqlalchemy.url")
    return url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Rows written by an older schema: the start of every test that a migration keeps them."""

from __future__ import annotations

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig

from gridmarket.adapters.store import MIGRATIONS_DIR, Store


def upgrade_with_rows(store: Store, revision: str, *statements: str) -> None:
    """Upgrade `store`'s schema to `revision` only, then run `statements` (the old rows), in
    one transaction; `store.migrate()` afterwards takes them through the newer migrations."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        alembic_command.upgrade(config, revision)
        for statement in statements:
            connection.exec_driver_sql(statement)

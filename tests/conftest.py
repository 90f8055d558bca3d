"""`database_url`: every store test (integration, crash, service) runs on SQLite and on PostgreSQL.

The PostgreSQL run gets a fresh schema of its own (made the connection's `search_path` through
libpq's `options`), dropped afterwards, so tests never see each other's tables. It needs
GRIDMARKET_TEST_POSTGRES_URL (`scripts/test` and CI set it); without it the PostgreSQL half
skips, saying so.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

POSTGRES_URL_ENV = "GRIDMARKET_TEST_POSTGRES_URL"

# Every `gridmarket serve` a test starts runs without the built-in model (seconds to load)
# unless the test turns it on: tests/supplier does.
os.environ.setdefault("GRIDMARKET_BUILTIN_SUPPLIER", "0")


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections live in a new, empty schema; the schema is dropped after."""
    schema = f"gm_test_{uuid.uuid4().hex[:16]}"
    engine = sa.create_engine(base_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield (
            sa.make_url(base_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'market.db'}"
        return
    base_url = os.environ.get(POSTGRES_URL_ENV)
    if not base_url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set: no PostgreSQL to test against")
    with postgres_schema(base_url) as url:
        yield url

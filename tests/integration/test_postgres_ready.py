"""The PostgreSQL that the suite runs against is reachable, so its tests cannot silently skip.

`scripts/test` starts the local PostgreSQL and sets GRIDMARKET_TEST_POSTGRES_URL; a run
without it (a bare `pytest`) skips this check.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

POSTGRES_URL_ENV = "GRIDMARKET_TEST_POSTGRES_URL"


@pytest.mark.postgres
def test_the_test_database_answers() -> None:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_URL_ENV} not set (scripts/test sets it)")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()

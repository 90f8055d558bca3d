"""`adapters.transactions.write_transaction`: on SQLite, a transaction that reads before it
writes waits for a concurrent writer instead of failing with "database is locked"."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridmarket.adapters.schema import meta
from gridmarket.adapters.store import Store
from gridmarket.adapters.transactions import write_transaction


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    store.migrate()
    try:
        yield store.engine
    finally:
        store.close()


def _put(connection: sa.Connection, key: str) -> None:
    connection.execute(sa.insert(meta).values(key=key, value="v"))


def _read(connection: sa.Connection) -> None:
    connection.execute(sa.select(meta)).all()


def _commit_elsewhere(engine: sa.Engine, key: str) -> threading.Thread:
    """Another connection writes `key` and commits, in a thread (it may have to wait)."""

    def write() -> None:
        with write_transaction(engine) as other:
            _put(other, key)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_a_plain_transaction_that_reads_first_fails_after_a_concurrent_commit(
    engine: sa.Engine,
) -> None:
    """What `write_transaction` is for: SQLite refuses the upgrade at once."""
    with pytest.raises(sa.exc.OperationalError, match="locked"), engine.begin() as connection:
        _read(connection)
        _commit_elsewhere(engine, "theirs").join(timeout=10)
        _put(connection, "mine")


def test_a_write_transaction_that_reads_first_waits_its_turn(engine: sa.Engine) -> None:
    with write_transaction(engine) as connection:
        _read(connection)
        other = _commit_elsewhere(engine, "theirs")
        other.join(timeout=0.2)
        assert other.is_alive()  # the other writer waits for this transaction's lock
        _put(connection, "mine")
    other.join(timeout=10)
    assert not other.is_alive()
    with engine.connect() as connection:
        keys = set(connection.execute(sa.select(meta.c.key)).scalars())
    assert {"mine", "theirs"} <= keys

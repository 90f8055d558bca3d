"""Transactions that write, outside the command log: `write_transaction(engine)`.

SQLite (WAL) lets one connection write at a time. A transaction opened with a plain (deferred)
`BEGIN` that reads first and writes later cannot take the write lock once another connection
has committed since its read, and SQLite answers "database is locked" at once, without waiting
out the busy timeout (waiting could not help: its snapshot is already stale). The command
log's writer commits every few milliseconds under load, so a registry or payment update that
reads first (insert unless present, say) failed now and then. `write_transaction` opens such
transactions with `BEGIN IMMEDIATE` on SQLite: the write lock is taken at the start, and a
busy writer is waited for (busy_timeout) like any other. Reads keep the deferred `BEGIN`, so
they never hold the lock the log's writer needs. On PostgreSQL the option does nothing.

    with write_transaction(engine) as connection:
        ...
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import sqlalchemy as sa

#: The execution option that `adapters.store.create_engine`'s BEGIN listener reads.
SQLITE_BEGIN_IMMEDIATE = "gridmarket_sqlite_begin_immediate"


def write_transaction(engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
    """`engine.begin()` for a transaction that writes (see the module doc)."""
    return engine.execution_options(**{SQLITE_BEGIN_IMMEDIATE: True}).begin()

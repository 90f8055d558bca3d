"""The store's tables (SQLAlchemy Core), as created by migration 0001.

- `commands`: the log. One row per sequenced command, rejected ones included; replaying it in
  `seq` order through a fresh core rebuilds the whole state. `seq` is the primary key, so a
  sequence number can never be written twice.
- `events`: what each command did, `id` numbered by the writer (0, 1, 2, ... in seq order, so
  an id is a stable cursor for feeds), `seq` the command that caused it.
- `postings`: the double-entry journal, one row per movement, numbered like events.
- `meta`: key/value facts about the store (the payload encoding).

Payloads are JSON objects as text (see `codec`); money and quantities are BIGINT. Indexes are
kept to the primary keys on purpose: every extra index costs the single writer on every row.
Ids are INTEGER on SQLite so that the primary key is the rowid (one B-tree, appends only).
"""

import sqlalchemy as sa

#: BIGINT on PostgreSQL; INTEGER (64-bit, the rowid alias when primary key) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

commands = sa.Table(
    "commands",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=False),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)

postings = sa.Table(
    "postings",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("asset", sa.Text, nullable=False),
    sa.Column("debit", sa.Text, nullable=False),
    sa.Column("credit", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

#: `meta` key whose value names the payload encoding this code reads and writes.
PAYLOAD_FORMAT_KEY = "payload_format"
PAYLOAD_FORMAT = "json-object-v1"

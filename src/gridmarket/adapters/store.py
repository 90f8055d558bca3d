"""The durable store: the command log with its events and postings, on SQLite or PostgreSQL.

Contract:
- `migrate()` brings the schema to the newest Alembic revision (in one transaction; on
  PostgreSQL under an advisory lock, so two processes starting at once do not race).
- `write_batch(entries)` writes a batch of sequenced commands, their events and postings in
  ONE transaction, and returns only once it is durable: on SQLite the file is in WAL mode with
  `synchronous=FULL` (the WAL is fsynced at every commit, so an acknowledged batch survives a
  process crash and a power loss); on PostgreSQL a commit waits for its WAL flush (the server
  default `synchronous_commit=on`). Either the whole batch is there afterwards or none of it.
- `load_commands()` yields `(seq, ts_ms, command)` in seq order: replaying them through a
  fresh core rebuilds the state. `load_events()` / `load_postings()` read the rest back.

Writing is split in two so that the sequencer can keep the writer thread free of Python work:
`prepare_batch` (CPU only: msgspec-encode the events, flatten every row; on the event loop's
thread) and `write_prepared` (the transaction; in ONE writer thread, on a dedicated
connection). Events and postings are numbered by the database (`id`, in insertion order). The
hot path bypasses SQL compilation and goes straight to the driver: on SQLite a few multi-row
`INSERT ... VALUES` statements per batch (one per 1,000 rows; not `executemany`, which drops and
retakes the GIL at every row and starves behind a busy event loop), on PostgreSQL `COPY`.
"""

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig

from gridmarket.adapters import codec
from gridmarket.adapters.schema import PAYLOAD_FORMAT, PAYLOAD_FORMAT_KEY
from gridmarket.adapters.transactions import SQLITE_BEGIN_IMMEDIATE
from gridmarket.core.commands import Command
from gridmarket.core.events import Event, Posting

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Rows fetched per round trip when streaming the log back.
READ_CHUNK_ROWS = 10_000
#: Any bigint: the advisory lock key PostgreSQL migrations serialise on.
_MIGRATION_LOCK_KEY = 0x6772_6964_6D6B  # "gridmk"


_COMMAND_COLUMNS = ("seq", "ts_ms", "kind", "payload")
_EVENT_COLUMNS = ("seq", "kind", "payload")
_POSTING_COLUMNS = ("seq", "asset", "debit", "credit", "amount")
#: Rows per INSERT statement: few statements per batch, under both drivers' parameter limits.
INSERT_CHUNK_ROWS = 1_000


class LogEntry(NamedTuple):
    """One sequenced command as the writer stores it (its payload already encoded)."""

    seq: int
    ts_ms: int
    kind: str
    payload: str
    events: Sequence[Event]
    postings: Sequence[Posting]


class PreparedBatch(NamedTuple):
    """A batch's rows, ready to insert: per table, every row's columns one after another."""

    size_commands: int
    commands: list[object]
    events: list[object]
    postings: list[object]


def create_engine(url: str, *, sqlite_synchronous: str = "FULL") -> sa.Engine:
    """An engine for `url`; SQLite files get WAL, the given `synchronous` and real BEGINs."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        raise ValueError("the store needs a SQLite file, not an in-memory database")
    assert sqlite_synchronous in ("FULL", "EXTRA", "NORMAL"), sqlite_synchronous
    engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(SQLITE_BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Store:
    """The command log and its events and postings in one SQL database."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.engine = create_engine(url, sqlite_synchronous=sqlite_synchronous)
        self.dialect = self.engine.dialect.name
        self._mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._inserts: dict[tuple[str, int], str] = {}
        self._writer: sa.Connection | None = None

    # -- schema ------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision and check the payload format."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
            config.attributes["connection"] = connection
            alembic_command.upgrade(config, "head")
            found = connection.execute(
                sa.text("SELECT value FROM meta WHERE key = :key"), {"key": PAYLOAD_FORMAT_KEY}
            ).scalar_one_or_none()
        if found != PAYLOAD_FORMAT:
            raise RuntimeError(
                f"store payload format {found!r}, this code reads {PAYLOAD_FORMAT!r}"
            )

    # -- writing (one thread) ----------------------------------------------------------------

    def _writer_connection(self) -> sa.Connection:
        if self._writer is None:
            self._writer = self.engine.connect()
        return self._writer

    def prepare_batch(self, entries: Sequence[LogEntry]) -> PreparedBatch:
        """The rows of `entries`, encoded and flattened (pure CPU work, any thread)."""
        encode_event = codec.EVENTS.encode
        commands: list[object] = []
        events: list[object] = []
        postings: list[object] = []
        for seq, ts_ms, kind, payload, entry_events, entry_postings in entries:
            commands += (seq, ts_ms, kind, payload)
            for event in entry_events:
                events += (seq, type(event).__name__, encode_event(event))
            for posting in entry_postings:
                postings += posting
        return PreparedBatch(len(entries), commands, events, postings)

    def write_prepared(self, batch: PreparedBatch) -> None:
        """Write a prepared batch in one transaction; returns once it is committed and durable.

        On any error nothing of the batch is stored and the writer connection is dropped (the
        next call opens a new one); the caller decides what an unstored batch means.
        """
        if not batch.commands:
            return
        writer = self._writer_connection()
        try:
            with writer.begin():
                self._insert(writer, "commands", _COMMAND_COLUMNS, batch.commands)
                self._insert(writer, "events", _EVENT_COLUMNS, batch.events)
                self._insert(writer, "postings", _POSTING_COLUMNS, batch.postings)
        except BaseException:
            self._drop_writer(broken=True)
            raise

    def write_batch(self, entries: Sequence[LogEntry]) -> None:
        """`prepare_batch` then `write_prepared`."""
        self.write_prepared(self.prepare_batch(entries))

    def _insert(
        self, writer: sa.Connection, table: str, columns: tuple[str, ...], values: list[object]
    ) -> None:
        """Insert flattened rows with as few statements as possible (multi-row VALUES).

        One statement per chunk, not one per row: each statement is one trip through the
        driver, and sqlite3 releases the GIL once per statement rather than once per row (per
        row, the writer thread waits for the GIL at every row while the event loop is busy).
        """
        width = len(columns)
        if not values:
            return
        if self.dialect == "postgresql":
            self._copy(writer, table, columns, values)
            return
        total_rows = len(values) // width
        for first_row in range(0, total_rows, INSERT_CHUNK_ROWS):
            rows = min(INSERT_CHUNK_ROWS, total_rows - first_row)
            sql = self._inserts.get((table, rows))
            if sql is None:
                row = "(" + ", ".join([self._mark] * width) + ")"
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join(
                    [row] * rows
                )
                self._inserts[(table, rows)] = sql
            writer.exec_driver_sql(
                sql, tuple(values[first_row * width : (first_row + rows) * width])
            )

    def _copy(
        self, writer: sa.Connection, table: str, columns: tuple[str, ...], values: list[object]
    ) -> None:
        """PostgreSQL's bulk path: COPY ... FROM STDIN, inside the batch's transaction.

        A multi-row INSERT with thousands of parameters costs PostgreSQL more to plan than to
        run (about 150 µs per command here); COPY streams the rows (about 40 µs).
        """
        width = len(columns)
        dbapi_connection: Any = writer.connection.dbapi_connection
        with (
            dbapi_connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            write_row = copy.write_row
            for start in range(0, len(values), width):
                write_row(values[start : start + width])

    def _drop_writer(self, *, broken: bool = False) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            if broken:
                writer.invalidate()
            writer.close()
        except Exception:  # the connection is being thrown away; nothing to save
            pass

    # -- reading -----------------------------------------------------------------------------

    def _rows(self, sql: str, params: dict[str, Any]) -> Iterator[sa.Row[Any]]:
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=READ_CHUNK_ROWS).execute(
                sa.text(sql), params
            )
            yield from result

    def last_seq(self) -> int:
        """The highest stored sequence number (0 for an empty log)."""
        with self.engine.connect() as connection:
            value: int = connection.exec_driver_sql(
                "SELECT COALESCE(MAX(seq), 0) FROM commands"
            ).scalar_one()
            return value

    def load_commands(self, after_seq: int = 0) -> Iterator[tuple[int, int, Command]]:
        """`(seq, ts_ms, command)` for every stored command after `after_seq`, in seq order."""
        decode = codec.decode_command
        for seq, ts_ms, kind, payload in self._rows(
            "SELECT seq, ts_ms, kind, payload FROM commands WHERE seq > :after ORDER BY seq",
            {"after": after_seq},
        ):
            yield seq, ts_ms, decode(kind, payload)

    def load_events(self, after_seq: int = 0) -> Iterator[tuple[int, Event]]:
        """`(id, event)` for every event of a command after `after_seq`, in id order."""
        decode = codec.decode_event
        for event_id, kind, payload in self._rows(
            "SELECT id, kind, payload FROM events WHERE seq > :after ORDER BY id",
            {"after": after_seq},
        ):
            yield event_id, decode(kind, payload)

    def load_postings(self, after_seq: int = 0) -> Iterator[tuple[int, Posting]]:
        """`(id, posting)` for every posting of a command after `after_seq`, in id order."""
        for posting_id, seq, asset, debit, credit, amount in self._rows(
            "SELECT id, seq, asset, debit, credit, amount FROM postings"
            " WHERE seq > :after ORDER BY id",
            {"after": after_seq},
        ):
            yield posting_id, Posting(seq, asset, debit, credit, amount)

    def close(self) -> None:
        self._drop_writer()
        self.engine.dispose()

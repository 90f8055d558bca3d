"""The store keeps every command, event and posting exactly, one batch per transaction, on
SQLite and PostgreSQL alike, and its schema comes from the packaged Alembic migrations."""

from collections.abc import Iterator, Sequence

import msgspec
import psycopg
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from gridmarket.adapters import codec
from gridmarket.adapters.store import MIGRATIONS_DIR, LogEntry, Store
from gridmarket.core import commands as c
from gridmarket.core import events as e
from gridmarket.core.ids import AccountId, CallId, InstrumentId, LotId, OrderId, TradeId

A = AccountId("alice")
S = AccountId("sam")
P = InstrumentId("text-prime")
BIG = 2**62  # well past 32 bits: amounts are BIGINT everywhere

#: One instance of every command type, with no field left at its default where it has one.
COMMANDS: list[c.Command] = [
    c.CreateAccount(A, is_supplier=True, auto_transfer=True),
    c.SetAutoTransfer(A, False),
    c.Deposit(A, BIG),
    c.Withdraw(A, 5),
    c.SupplierPayout(S, 7),
    c.SetSupplierCapacity(S, P, 100_000),
    c.IssueUnits(S, P, 10),
    c.TransferIssuanceToTrading(S, P, 3),
    c.PlaceOrder(A, P, "buy", "limit", 2, 2_500_000, "ioc", True, "cid-ü", False),
    c.CancelOrder(A, OrderId(9)),
    c.ReplaceOrder(A, OrderId(9), 2_600_000, 4),
    c.CancelAllOrders(A, P),
    c.TransferToConsumption(A, P, 1),
    c.TransferToTrading(A, P, 1),
    c.CommitTokens(CallId("call-1"), A, P, 1_000),
    c.SettleCall(CallId("call-1"), 600, supplier_id="operator"),
    c.SettleReceivable(S),
    c.ExpireLots(),
    c.Sweep(P),
]

#: One instance of every event type, nested tuples included.
EVENTS: list[e.Event] = [
    e.Rejected(1, 10, "Deposit", None, "unknown_account"),
    e.AccountCreated(1, 10, A, True, False),
    e.AutoTransferSet(1, 10, A, True),
    e.UsdMoved(1, 10, A, "deposit", BIG),
    e.SupplierCapacitySet(1, 10, S, P, 100_000),
    e.UnitsIssued(1, 10, S, P, 10),
    e.UnitsTransferred(1, 10, S, P, "issuance", "trading", 3),
    e.OrderAccepted(
        1, 10, OrderId(1), A, P, "buy", "market", None, 2, "gtc", False, None, True, 5_000_000
    ),
    e.OrderRejected(1, 10, A, P, "cid", "insufficient_funds"),
    e.OrderAlreadyExists(1, 10, OrderId(1), A, "cid"),
    e.Trade(1, 10, TradeId(4), P, 3, 2_500_000, 2, A, S, OrderId(1), OrderId(2), "buy", 5, 0),
    e.OrderCancelled(1, 10, OrderId(1), A, P, "requested", 1),
    e.OrderClosed(1, 10, OrderId(1), A, P, "no_liquidity", 1),
    e.LotCreated(1, 10, LotId(2), A, P, S, 2_500_000, 2_000_000, (TradeId(4), TradeId(5)), None),
    e.TokensCommitted(1, 10, CallId("k"), A, P, 300, ((LotId(1), 200), (LotId(2), 100))),
    e.CallSettled(1, 10, CallId("k"), A, P, 250, 250, 50, 0, ((LotId(1), 200), (LotId(2), 50))),
    e.TokensForfeited(1, 10, LotId(1), A, P, 77),
    e.SubstitutionSettled(1, 10, CallId("k"), A, P, LotId(1), S, A, 250, 2_500_000, 625, BIG),
    e.ReceivableSettled(1, 10, S, BIG, 0),
    e.OrderReplaced(1, 10, OrderId(1), OrderId(2), A, P),
]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    store.migrate()
    yield store
    store.close()


def _entry(
    seq: int,
    command: c.Command,
    events: Sequence[e.Event] = (),
    postings: Sequence[e.Posting] = (),
) -> LogEntry:
    kind, payload = codec.encode_command(command)
    return LogEntry(seq, 1_000 + seq, kind, payload, list(events), list(postings))


def test_the_samples_cover_every_type() -> None:
    assert {type(x).__name__ for x in COMMANDS} == set(c.COMMAND_TYPES)
    assert {type(x).__name__ for x in EVENTS} == set(e.EVENT_TYPES)


def test_every_command_type_round_trips(store: Store) -> None:
    store.write_batch([_entry(seq, command) for seq, command in enumerate(COMMANDS, 1)])

    loaded = list(store.load_commands())

    assert loaded == [(seq, 1_000 + seq, command) for seq, command in enumerate(COMMANDS, 1)]
    assert [type(command) for _, _, command in loaded] == [type(x) for x in COMMANDS]


def test_every_event_type_round_trips_with_its_tuples(store: Store) -> None:
    store.write_batch([_entry(1, c.ExpireLots(), EVENTS)])

    loaded = [event for _, event in store.load_events()]

    assert loaded == EVENTS
    committed = loaded[EVENTS.index(EVENTS[14])]
    assert isinstance(committed, e.TokensCommitted)
    assert committed.allocations == ((1, 200), (2, 100))
    assert type(committed.allocations) is tuple and type(committed.allocations[0]) is tuple


def test_postings_keep_their_order_and_big_amounts(store: Store) -> None:
    postings = [
        e.Posting(1, "usd", "external/usd/external", "alice/usd/available", BIG),
        e.Posting(1, "usd", "alice/usd/available", "alice/usd/locked", 1),
        e.Posting(2, P, "sam/text-prime/trading_available", "sam/text-prime/trading_locked", 9),
    ]
    store.write_batch(
        [
            _entry(1, c.Deposit(A, BIG), [], postings[:2]),
            _entry(2, c.ExpireLots(), [], postings[2:]),
        ]
    )

    assert [posting for _, posting in store.load_postings()] == postings
    assert [posting for _, posting in store.load_postings(after_seq=1)] == postings[2:]
    ids = [posting_id for posting_id, _ in store.load_postings()]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_commands_come_back_in_seq_order_across_batches(store: Store) -> None:
    store.write_batch([_entry(1, COMMANDS[0]), _entry(2, COMMANDS[1])])
    store.write_batch([_entry(3, COMMANDS[2])])

    assert [seq for seq, _, _ in store.load_commands()] == [1, 2, 3]
    assert [seq for seq, _, _ in store.load_commands(after_seq=2)] == [3]
    assert store.last_seq() == 3


def test_a_failing_batch_leaves_nothing_behind(store: Store) -> None:
    """A batch that breaks midway (here: a seq written twice) is rolled back entirely."""
    event = EVENTS[3]
    store.write_batch([_entry(1, COMMANDS[0], [event])])

    # SQLAlchemy's error on SQLite; psycopg's own from PostgreSQL's COPY path.
    with pytest.raises((sa.exc.IntegrityError, psycopg.errors.UniqueViolation)):
        store.write_batch([_entry(2, COMMANDS[1], [event]), _entry(1, COMMANDS[2], [event])])

    assert [seq for seq, _, _ in store.load_commands()] == [1]
    assert len(list(store.load_events())) == 1
    store.write_batch([_entry(2, COMMANDS[1], [event])])  # the writer recovers
    assert [seq for seq, _, _ in store.load_commands()] == [1, 2]


def test_a_large_batch_is_written_in_one_go(store: Store) -> None:
    """Thousands of rows per table: more than one INSERT statement's worth."""
    entries = [
        _entry(seq, c.Deposit(A, seq), [e.UsdMoved(seq, 0, A, "deposit", seq)] * 2)
        for seq in range(1, 2_501)
    ]
    store.write_batch(entries)

    assert store.last_seq() == 2_500
    assert sum(1 for _ in store.load_events()) == 5_000
    assert [command for _, _, command in store.load_commands(after_seq=2_499)] == [
        c.Deposit(A, 2_500)
    ]


def test_migrate_twice_is_a_no_op_and_reaches_head(store: Store) -> None:
    store.write_batch([_entry(1, COMMANDS[0])])
    store.migrate()

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    with store.engine.connect() as connection:
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        tables = set(sa.inspect(connection).get_table_names())
    assert version == head == "0005"
    assert {"commands", "events", "postings", "meta", "accounts", "signing_keys"} <= tables
    assert store.last_seq() == 1


def test_the_migrations_ship_with_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()


def test_sqlite_is_in_wal_mode_with_full_sync(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/x.db")
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
    finally:
        store.close()


def test_a_payload_from_elsewhere_is_refused_not_guessed() -> None:
    with pytest.raises(msgspec.ValidationError):
        codec.decode_command("Deposit", b'{"account_id": "a", "amount_usd_micros": 1, "x": 2}')
    with pytest.raises(msgspec.ValidationError):
        codec.decode_command("Deposit", b'{"account_id": "a"}')
    with pytest.raises(msgspec.ValidationError):
        codec.decode_command("Teleport", b"{}")
    with pytest.raises(msgspec.ValidationError):
        codec.decode_event("UsdMoved", b'{"seq": 1, "ts_ms": 1, "account_id": "a", "kind": "x"}')

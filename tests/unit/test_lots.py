"""Units reach consumption as lots, one per (supplier, price) run, by explicit transfer or
automatically on fill (account setting or per-order override); lots carry the instrument's
consumption window, and consumption never goes back to trading."""

from typing import Any, NamedTuple

import pytest

from gridmarket.core.accounts import Lot
from gridmarket.core.commands import SetAutoTransfer, TransferToConsumption, TransferToTrading
from gridmarket.core.events import (
    AutoTransferSet,
    LotCreated,
    OrderAccepted,
    Rejected,
    UnitsTransferred,
)
from gridmarket.core.ids import AccountId, InstrumentId, LotId, TradeId

from .helpers import HOUR_MS, TP, Market, of_type, variant

C1 = AccountId("c1")


def _four_batches(m: Market) -> None:
    """c1 buys, in this order: 2 @ 2.000 and 1 @ 2.000 from s1, 1 @ 2.000 from s2, 2 @ 2.100
    from s1 (trades 1 to 4)."""
    m.supplier("s1", 5)
    m.supplier("s2", 1)
    m.account("c1", 100_000_000)
    for seller, units, price in (
        ("s1", 2, 2_000_000),
        ("s1", 1, 2_000_000),
        ("s2", 1, 2_000_000),
        ("s1", 2, 2_100_000),
    ):
        m.ask(seller, units, price)
        m.buy("c1", units, price)


class Runs(NamedTuple):
    name: str
    units: int
    #: (supplier, price, tokens, trade ids) of each lot created.
    lots: list[tuple[str, int, int, tuple[int, ...]]]
    #: c1's batches left in trading: (supplier, price, units, trade ids).
    left: list[tuple[str, int, int, tuple[int, ...]]]


RUNS = [
    Runs(
        "part_of_the_first_batch",
        1,
        [("s1", 2_000_000, 1_000_000, (1,))],
        [
            ("s1", 2_000_000, 1, (1,)),
            ("s1", 2_000_000, 1, (2,)),
            ("s2", 2_000_000, 1, (3,)),
            ("s1", 2_100_000, 2, (4,)),
        ],
    ),
    Runs(
        "two_batches_same_supplier_and_price_make_one_lot",
        3,
        [("s1", 2_000_000, 3_000_000, (1, 2))],
        [("s2", 2_000_000, 1, (3,)), ("s1", 2_100_000, 2, (4,))],
    ),
    Runs(
        "another_supplier_at_the_same_price_is_another_lot",
        4,
        [("s1", 2_000_000, 3_000_000, (1, 2)), ("s2", 2_000_000, 1_000_000, (3,))],
        [("s1", 2_100_000, 2, (4,))],
    ),
    Runs(
        "same_supplier_at_another_price_is_another_lot",
        6,
        [
            ("s1", 2_000_000, 3_000_000, (1, 2)),
            ("s2", 2_000_000, 1_000_000, (3,)),
            ("s1", 2_100_000, 2_000_000, (4,)),
        ],
        [],
    ),
]


@pytest.mark.parametrize("s", RUNS, ids=lambda s: s.name)
def test_transfer_makes_one_lot_per_supplier_price_run(s: Runs) -> None:
    m = Market()
    _four_batches(m)
    m.advance(1_000)
    outcome = m.apply(TransferToConsumption(C1, TP, s.units))
    assert of_type(outcome.events, LotCreated) == [
        LotCreated(
            outcome.seq,
            m.now_ms,
            LotId(n + 1),
            C1,
            TP,
            AccountId(supplier),
            price,
            tokens,
            tuple(TradeId(t) for t in trades),
            None,
        )
        for n, (supplier, price, tokens, trades) in enumerate(s.lots)
    ]
    assert of_type(outcome.events, UnitsTransferred) == [
        UnitsTransferred(outcome.seq, m.now_ms, C1, TP, "trading", "consumption", s.units)
    ]
    assert m.tokens("c1") == ((6 - s.units) * 1_000_000, 0, s.units * 1_000_000, 0)
    holding = m.state.accounts["c1"].holdings[TP]
    assert [b.snapshot() for b in holding.batches] == s.left
    assert [lot.created_ms for lot in holding.lots] == [m.now_ms] * len(s.lots)


class BadTransfer(NamedTuple):
    name: str
    command: Any
    reason: str


BAD_TRANSFERS = [
    BadTransfer("more_than_held", TransferToConsumption(C1, TP, 7), "insufficient_units"),
    BadTransfer("units_locked_in_an_ask", TransferToConsumption(C1, TP, 5), "insufficient_units"),
    BadTransfer("zero", TransferToConsumption(C1, TP, 0), "invalid_quantity"),
    BadTransfer(
        "unknown_account", TransferToConsumption(AccountId("ghost"), TP, 1), "unknown_account"
    ),
    BadTransfer(
        "unknown_instrument",
        TransferToConsumption(C1, InstrumentId("nope"), 1),
        "unknown_instrument",
    ),
    BadTransfer(
        "consumption_to_trading", TransferToTrading(C1, TP, 1), "consumption_to_trading_refused"
    ),
    BadTransfer(
        "consumption_to_trading_all", TransferToTrading(C1, TP, 2), "consumption_to_trading_refused"
    ),
    BadTransfer(
        "consumption_to_trading_bad_quantity_first",
        TransferToTrading(C1, TP, 0),
        "invalid_quantity",
    ),
]


@pytest.mark.parametrize("s", BAD_TRANSFERS, ids=lambda s: s.name)
def test_refused_transfers_change_nothing(s: BadTransfer) -> None:
    m = Market()
    _four_batches(m)
    m.apply(TransferToConsumption(C1, TP, 2))
    m.ask("c1", 2, 2_500_000)  # 2 of the 4 units left in trading are locked
    before = m.balances()
    lots = m.lots("c1")
    outcome = m.apply(s.command)
    assert outcome.events == [
        Rejected(outcome.seq, m.now_ms, type(s.command).__name__, s.command.account_id, s.reason)
    ]
    assert m.balances() == before
    assert m.lots("c1") == lots


class Auto(NamedTuple):
    name: str
    account_setting: bool
    #: Changed by SetAutoTransfer before the order, if not None.
    set_to: bool | None
    order_override: bool | None
    to_consumption: bool


AUTOS = [
    Auto("account_off_order_default", False, None, None, False),
    Auto("account_on_order_default", True, None, None, True),
    Auto("account_off_order_on", False, None, True, True),
    Auto("account_on_order_off", True, None, False, False),
    Auto("account_switched_on", False, True, None, True),
    Auto("account_switched_off", True, False, None, False),
]


@pytest.mark.parametrize("s", AUTOS, ids=lambda s: s.name)
def test_auto_transfer_on_fill(s: Auto) -> None:
    m = Market()
    m.supplier("s1", 1)
    m.supplier("s2", 1)
    m.ask("s1", 1, 2_000_000)
    m.ask("s2", 1, 2_100_000)
    m.account("c1", 10_000_000, auto_transfer=s.account_setting)
    if s.set_to is not None:
        outcome = m.apply(SetAutoTransfer(C1, s.set_to))
        assert outcome.events == [AutoTransferSet(outcome.seq, m.now_ms, C1, s.set_to)]
    outcome = m.buy("c1", 2, 2_100_000, auto_transfer=s.order_override)
    assert of_type(outcome.events, OrderAccepted)[0].auto_transfer is s.to_consumption
    lots = of_type(outcome.events, LotCreated)
    if s.to_consumption:
        assert [
            (lot.lot_id, lot.supplier_id, lot.price_usd_micros, lot.tokens, lot.trade_ids)
            for lot in lots
        ] == [
            (1, "s1", 2_000_000, 1_000_000, (1,)),
            (2, "s2", 2_100_000, 1_000_000, (2,)),
        ]
        assert m.tokens("c1") == (0, 0, 2_000_000, 0)
        assert list(m.state.accounts["c1"].holdings[TP].batches) == []
    else:
        assert lots == []
        assert m.tokens("c1") == (2_000_000, 0, 0, 0)
        assert m.lots("c1") == []


def test_auto_transfer_on_a_resting_bid_filled_later() -> None:
    m = Market(variant(TP, consumption_window_ms=4 * HOUR_MS))
    m.account("c1", 10_000_000)
    m.bid("c1", 2, 2_000_000, auto_transfer=True)
    m.supplier("s1", 2)
    m.advance(HOUR_MS)
    outcome = m.sell("s1", 2, 2_000_000)
    assert [
        (e.supplier_id, e.tokens, e.expires_at_ms) for e in of_type(outcome.events, LotCreated)
    ] == [("s1", 2_000_000, m.now_ms + 4 * HOUR_MS)]
    assert m.tokens("c1") == (0, 0, 2_000_000, 0)


def test_auto_transfer_belongs_to_the_buyer_not_the_seller() -> None:
    m = Market()
    m.supplier("s1", 1)
    m.apply(SetAutoTransfer(AccountId("s1"), True))
    m.ask("s1", 1, 2_000_000)
    m.account("c1", 10_000_000)
    m.buy("c1", 1, 2_000_000)
    assert m.tokens("c1") == (1_000_000, 0, 0, 0)


def test_set_auto_transfer_unknown_account() -> None:
    m = Market()
    outcome = m.apply(SetAutoTransfer(AccountId("ghost"), True))
    assert outcome.events == [
        Rejected(outcome.seq, m.now_ms, "SetAutoTransfer", "ghost", "unknown_account")
    ]


@pytest.mark.parametrize(
    ("window_ms", "expires_after_ms"),
    [(None, None), (4 * HOUR_MS, 4 * HOUR_MS), (1, 1), (30 * 24 * HOUR_MS, 30 * 24 * HOUR_MS)],
    ids=["none_never_expires", "four_hours", "one_ms", "thirty_days"],
)
def test_lots_carry_the_consumption_window(
    window_ms: int | None, expires_after_ms: int | None
) -> None:
    m = Market(variant(TP, consumption_window_ms=window_ms))
    m.bought("c1", 1, 1_000_000)
    m.advance(123)
    outcome = m.apply(TransferToConsumption(C1, TP, 1))
    (lot,) = of_type(outcome.events, LotCreated)
    expected = None if expires_after_ms is None else m.now_ms + expires_after_ms
    assert lot.expires_at_ms == expected
    assert m.lots("c1") == [(1, "s1", 1_000_000, 1_000_000, 0, expected)]


class Draw(NamedTuple):
    name: str
    #: (lot id, expires at) of each lot.
    lots: list[tuple[int, int | None]]
    #: Lot ids in draw order.
    order: list[int]


DRAWS = [
    Draw("never_expiring_oldest_first", [(3, None), (1, None), (2, None)], [1, 2, 3]),
    Draw("soonest_expiring_first", [(1, 9_000), (2, 5_000), (3, 7_000)], [2, 3, 1]),
    Draw("soonest_expiring_before_older", [(1, 8_000), (2, 3_000)], [2, 1]),
    Draw("same_expiry_oldest_first", [(4, 5_000), (2, 5_000), (3, 5_000)], [2, 3, 4]),
    Draw("never_expiring_last", [(1, None), (2, 10**15), (3, 1)], [3, 2, 1]),
    Draw("expiring_at_zero_is_first", [(1, None), (2, 0)], [2, 1]),
]


@pytest.mark.parametrize("s", DRAWS, ids=lambda s: s.name)
def test_draw_order_is_soonest_expiring_then_oldest(s: Draw) -> None:
    lots = [
        Lot(LotId(i), C1, TP, AccountId("s1"), 1_000_000, 1_000_000, (), 0, expires)
        for i, expires in s.lots
    ]
    assert [lot.lot_id for lot in sorted(lots, key=Lot.draw_order)] == s.order

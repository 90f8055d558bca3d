"""Cancelling releases exactly the order's remaining hold; only the owner can cancel, only once;
cancel-all takes every open order of an account, in all markets or in one."""

from typing import NamedTuple

import pytest

from gridmarket.core.commands import CancelAllOrders, CancelOrder
from gridmarket.core.events import OrderCancelled, Rejected
from gridmarket.core.ids import AccountId, InstrumentId, OrderId

from .helpers import TP, TS, Market, of_type, variant


class Cancel(NamedTuple):
    name: str
    #: c1's order: (side, units, price); then units of it filled by a counterparty.
    order: tuple[str, int, int]
    filled: int
    #: The OrderCancelled remaining units, and c1 after the cancel:
    #: (USD available, USD locked, trading available, trading locked).
    remaining: int
    after: tuple[int, int, int, int]


# c1 starts with 10 USD and 5 units; text-prime charges maker 10 bps, taker 20 bps.
CANCELS = [
    Cancel("resting_bid_releases_usd", ("buy", 2, 2_000_000), 0, 2, (10_000_000, 0, 5_000_000, 0)),
    Cancel(
        # Filled 1 as maker: paid 2.000 + 0.002 fee; the rest of the hold comes back.
        "partially_filled_bid_releases_the_rest",
        ("buy", 2, 2_000_000),
        1,
        1,
        (7_998_000, 0, 6_000_000, 0),
    ),
    Cancel(
        "resting_ask_releases_units", ("sell", 3, 2_000_000), 0, 3, (10_000_000, 0, 5_000_000, 0)
    ),
    Cancel(
        # Sold 1 as maker: received 2.000 less a 0.002 fee; 2 units come back.
        "partially_filled_ask_releases_the_rest",
        ("sell", 3, 2_000_000),
        1,
        2,
        (11_998_000, 0, 4_000_000, 0),
    ),
]


@pytest.mark.parametrize("s", CANCELS, ids=lambda s: s.name)
def test_cancel_releases_holds(s: Cancel) -> None:
    m = Market(variant(TP, maker_fee_bps=10, taker_fee_bps=20))
    m.supplier("c1", 5, usd_micros=10_000_000)
    m.supplier("x", 5, usd_micros=10_000_000)
    side, units, price = s.order
    oid = m.place("c1", side, units, price).events[0].order_id
    if s.filled:
        m.place("x", "sell" if side == "buy" else "buy", s.filled, price)
    m.advance(5)
    outcome = m.apply(CancelOrder(AccountId("c1"), oid))
    assert outcome.events == [
        OrderCancelled(outcome.seq, m.now_ms, oid, AccountId("c1"), TP, "requested", s.remaining)
    ]
    assert (*m.usd("c1"), *m.tokens("c1")[:2]) == s.after
    assert m.status(oid) == "cancelled"
    assert list(m.state.books[TP].bids.depth()) == []
    assert list(m.state.books[TP].asks.depth()) == []


class BadCancel(NamedTuple):
    name: str
    account: str
    #: Which order: "mine" (c1's resting bid), "filled", "cancelled", "closed", "others", "none".
    target: str
    reason: str


BAD_CANCELS = [
    BadCancel("another_accounts_order_is_unknown", "c2", "mine", "unknown_order"),
    BadCancel("order_id_never_used", "c1", "none", "unknown_order"),
    BadCancel("unknown_account", "ghost", "mine", "unknown_order"),
    BadCancel("twice", "c1", "cancelled", "order_not_open"),
    BadCancel("filled_order", "c1", "filled", "order_not_open"),
    BadCancel("closed_ioc_order", "c1", "closed", "order_not_open"),
]


@pytest.mark.parametrize("s", BAD_CANCELS, ids=lambda s: s.name)
def test_bad_cancel_is_rejected_and_changes_nothing(s: BadCancel) -> None:
    m = Market()
    m.supplier("s1", 1)
    m.account("c1", 10_000_000)
    m.account("c2", 10_000_000)
    targets = {
        "mine": m.bid("c1", 1, 1_000_000),
        "filled": m.bid("c1", 1, 2_000_000),
        "none": OrderId(10_000),
    }
    m.sell("s1", 1, 2_000_000)
    targets["closed"] = m.buy("c1", 1, 1_500_000, time_in_force="ioc").seq
    targets["cancelled"] = m.bid("c1", 1, 1_200_000)
    m.apply(CancelOrder(AccountId("c1"), targets["cancelled"]))
    before = m.balances()
    outcome = m.apply(CancelOrder(AccountId(s.account), OrderId(targets[s.target])))
    assert outcome.events == [Rejected(outcome.seq, m.now_ms, "CancelOrder", s.account, s.reason)]
    assert m.balances() == before
    assert m.status(targets["mine"]) == "active"


def _two_markets() -> tuple[Market, dict[str, OrderId]]:
    m = Market()
    m.supplier("c1", 5, usd_micros=20_000_000)
    m.supplier("c1", 5, TS)
    m.account("c2", 10_000_000)
    ids = {
        "tp_bid": m.bid("c1", 1, 1_000_000),
        "tp_ask": m.ask("c1", 2, 3_000_000),
        "ts_bid": m.bid("c1", 2, 1_500_000, instrument_id=TS),
        "ts_ask": m.ask("c1", 1, 4_000_000, instrument_id=TS),
        "other": m.bid("c2", 1, 1_000_000),
    }
    return m, ids


class CancelAll(NamedTuple):
    name: str
    instrument: str | None
    cancelled: list[str]
    #: c1 after: USD (available, locked), text-prime and text-standard trading (available, locked).
    after: tuple[int, int, int, int, int, int]


CANCEL_ALLS = [
    CancelAll(
        "all_markets",
        None,
        ["tp_bid", "tp_ask", "ts_bid", "ts_ask"],
        (20_000_000, 0, 5_000_000, 0, 5_000_000, 0),
    ),
    CancelAll(
        "one_market",
        TP,
        ["tp_bid", "tp_ask"],
        (17_000_000, 3_000_000, 5_000_000, 0, 4_000_000, 1_000_000),
    ),
    CancelAll(
        "market_without_orders",
        "code-max",
        [],
        (16_000_000, 4_000_000, 3_000_000, 2_000_000, 4_000_000, 1_000_000),
    ),
]


@pytest.mark.parametrize("s", CANCEL_ALLS, ids=lambda s: s.name)
def test_cancel_all(s: CancelAll) -> None:
    m, ids = _two_markets()
    instrument = InstrumentId(s.instrument) if s.instrument else None
    outcome = m.apply(CancelAllOrders(AccountId("c1"), instrument))
    cancels = of_type(outcome.events, OrderCancelled)
    assert [c.order_id for c in cancels] == [ids[name] for name in s.cancelled]
    assert {c.reason for c in cancels} <= {"requested"}
    assert (*m.usd("c1"), *m.tokens("c1")[:2], *m.tokens("c1", TS)[:2]) == s.after
    assert m.status(ids["other"]) == "active"


@pytest.mark.parametrize(
    ("account", "instrument", "reason"),
    [("ghost", None, "unknown_account"), ("c1", "nope", "unknown_instrument")],
    ids=["unknown_account", "unknown_instrument"],
)
def test_cancel_all_rejects(account: str, instrument: str | None, reason: str) -> None:
    m, ids = _two_markets()
    before = m.balances()
    outcome = m.apply(
        CancelAllOrders(AccountId(account), InstrumentId(instrument) if instrument else None)
    )
    assert outcome.events == [Rejected(outcome.seq, m.now_ms, "CancelAllOrders", account, reason)]
    assert m.balances() == before
    assert all(m.status(i) == "active" for i in ids.values())

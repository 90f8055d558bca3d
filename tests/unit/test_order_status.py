"""Order statuses move only along the transition table in orders.py: each lifecycle below passes
through exactly the expected statuses, and any other transition fails an assertion."""

from collections.abc import Callable
from itertools import pairwise
from typing import NamedTuple

import pytest

from gridmarket.core.commands import CancelOrder
from gridmarket.core.ids import AccountId, OrderId
from gridmarket.core.orders import (
    ACTIVE,
    CANCELLED,
    CLOSED,
    FILLED,
    OPEN_STATUSES,
    PARTIALLY_FILLED,
    REJECTED,
    TERMINAL_STATUSES,
    TRANSITIONS,
)

from .helpers import Market, order_id

ALL = [ACTIVE, PARTIALLY_FILLED, FILLED, CANCELLED, CLOSED, REJECTED]

#: The table as documented in orders.py, written out by hand.
DOCUMENTED = {
    ("active", "partially_filled"),
    ("active", "filled"),
    ("active", "cancelled"),
    ("active", "closed"),
    ("partially_filled", "partially_filled"),
    ("partially_filled", "filled"),
    ("partially_filled", "cancelled"),
    ("partially_filled", "closed"),
}


def test_the_table_is_the_documented_one() -> None:
    assert set(TRANSITIONS) == DOCUMENTED
    assert set(OPEN_STATUSES) == {"active", "partially_filled"}
    assert set(TERMINAL_STATUSES) == {"filled", "cancelled", "closed", "rejected"}


Step = Callable[[Market, OrderId], object]


def _fill(units: int) -> Step:
    def step(m: Market, oid: OrderId) -> object:
        side = "sell" if m.state.orders[oid].is_buy else "buy"
        price = m.state.orders[oid].price_usd_micros
        return m.place("x", side, units, price)

    return step


def _cancel(m: Market, oid: OrderId) -> object:
    return m.apply(CancelOrder(AccountId("c1"), oid))


class Lifecycle(NamedTuple):
    name: str
    #: c1's order: (side, units, price or None, time in force); x's resting asks before it.
    order: tuple[str, int, int | None, str]
    asks: int
    #: Steps after placement, and the status after placement and after each step.
    steps: list[Step]
    statuses: list[str]


LIFECYCLES = [
    Lifecycle("rests_active", ("buy", 3, 2_000_000, "gtc"), 0, [], ["active"]),
    Lifecycle("taker_filled_at_once", ("buy", 2, 2_000_000, "gtc"), 2, [], ["filled"]),
    Lifecycle(
        "taker_partially_filled_rests", ("buy", 3, 2_000_000, "gtc"), 1, [], ["partially_filled"]
    ),
    Lifecycle(
        "maker_filled_in_one", ("buy", 3, 2_000_000, "gtc"), 0, [_fill(3)], ["active", "filled"]
    ),
    Lifecycle(
        "maker_filled_in_three",
        ("buy", 3, 2_000_000, "gtc"),
        0,
        [_fill(1), _fill(1), _fill(1)],
        ["active", "partially_filled", "partially_filled", "filled"],
    ),
    Lifecycle(
        "active_cancelled", ("buy", 3, 2_000_000, "gtc"), 0, [_cancel], ["active", "cancelled"]
    ),
    Lifecycle(
        "partially_filled_cancelled",
        ("buy", 3, 2_000_000, "gtc"),
        0,
        [_fill(2), _cancel],
        ["active", "partially_filled", "cancelled"],
    ),
    Lifecycle(
        "ask_maker_filled",
        ("sell", 2, 2_000_000, "gtc"),
        0,
        [_fill(1), _fill(1)],
        ["active", "partially_filled", "filled"],
    ),
    Lifecycle("ioc_nothing_closed", ("buy", 1, 2_000_000, "ioc"), 0, [], ["closed"]),
    Lifecycle("ioc_partly_then_closed", ("buy", 3, 2_000_000, "ioc"), 1, [], ["closed"]),
    Lifecycle("fok_killed_closed", ("buy", 3, 2_000_000, "fok"), 2, [], ["closed"]),
    Lifecycle("fok_filled", ("buy", 2, 2_000_000, "fok"), 2, [], ["filled"]),
    Lifecycle("market_no_liquidity_closed", ("buy", 1, None, "gtc"), 0, [], ["closed"]),
    Lifecycle("market_partly_then_closed", ("buy", 3, None, "gtc"), 2, [], ["closed"]),
    Lifecycle("market_filled", ("buy", 2, None, "gtc"), 2, [], ["filled"]),
]


@pytest.mark.parametrize("s", LIFECYCLES, ids=lambda s: s.name)
def test_lifecycle(s: Lifecycle) -> None:
    m = Market()
    m.supplier("x", 10, usd_micros=100_000_000)
    m.supplier("c1", 10, usd_micros=100_000_000)
    if s.asks:
        m.ask("x", s.asks, 2_000_000)
    side, units, price, tif = s.order
    oid = order_id(m.place("c1", side, units, price, time_in_force=tif))
    seen = [m.status(oid)]
    for step in s.steps:
        step(m, oid)
        seen.append(m.status(oid))
    assert seen == s.statuses
    assert all((a, b) in TRANSITIONS for a, b in pairwise(seen))


def test_a_rejected_order_never_enters_the_book() -> None:
    m = Market()
    m.account("c1")
    outcome = m.buy("c1", 1, 2_000_000)
    assert outcome.events[0].reason == "insufficient_funds"
    assert m.state.orders == {}
    assert list(m.state.books["text-prime"].bids.depth()) == []


def _order_in(status: str) -> tuple[Market, OrderId]:
    m = Market()
    m.supplier("x", 10, usd_micros=100_000_000)
    m.account("c1", 100_000_000)
    oid = m.bid("c1", 2, 2_000_000)
    if status == PARTIALLY_FILLED:
        m.sell("x", 1, 2_000_000)
    elif status == FILLED:
        m.sell("x", 2, 2_000_000)
    elif status == CANCELLED:
        m.apply(CancelOrder(AccountId("c1"), oid))
    elif status == CLOSED:
        oid = m.buy("c1", 1, 2_000_000, time_in_force="ioc").seq
    assert m.status(oid) == status
    return m, oid


ILLEGAL = [
    (frm, to)
    for frm in [ACTIVE, PARTIALLY_FILLED, FILLED, CANCELLED, CLOSED]
    for to in ALL
    if (frm, to) not in DOCUMENTED
]


@pytest.mark.parametrize(("frm", "to"), ILLEGAL, ids=[f"{a}_to_{b}" for a, b in ILLEGAL])
def test_illegal_transition_fails_an_assertion(frm: str, to: str) -> None:
    m, oid = _order_in(frm)
    order = m.state.orders[oid]
    with pytest.raises(AssertionError):
        order.transition(to, m.now_ms)
    assert order.status == frm


@pytest.mark.parametrize(
    ("frm", "to"), sorted(DOCUMENTED), ids=[f"{a}_to_{b}" for a, b in sorted(DOCUMENTED)]
)
def test_legal_transition_is_allowed(frm: str, to: str) -> None:
    m, oid = _order_in(frm)
    order = m.state.orders[oid]
    order.transition(to, m.now_ms + 7)
    assert (order.status, order.updated_ms) == (to, m.now_ms + 7)

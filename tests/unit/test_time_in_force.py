"""Limit orders honour their time in force: gtc rests the remainder, ioc closes it, fok fills
completely or not at all (nothing traded otherwise), and post_only never takes liquidity."""

from typing import NamedTuple

import pytest

from gridmarket.core.events import OrderClosed, OrderRejected

from .helpers import TP, Market, kinds, of_type, trades


class Tif(NamedTuple):
    name: str
    #: The incoming order of "c1": (side, units, price, time in force, post_only).
    order: tuple[str, int, int, str, bool]
    kinds: list[str]
    #: (price, units) of each trade.
    trades: list[tuple[int, int]]
    #: (closure reason, remaining units), when the remainder was closed.
    closed: tuple[str, int] | None
    #: The order's status after, None when it was rejected.
    status: str | None
    #: c1 after: (USD available, USD locked, trading available, trading locked).
    after: tuple[int, int, int, int]
    #: (price, open units) on the order's own side of the book after, best first.
    own_side: list[tuple[int, int]]


# Book: asks 2 @ 2.000 (s1), 2 @ 2.100 (s2); bids 2 @ 1.900 (b1), 2 @ 1.800 (b2).
# c1 starts with 20 USD and 4 units.
START = (20_000_000, 0, 4_000_000, 0)
BIDS = [(1_900_000, 2), (1_800_000, 2)]
ASKS = [(2_000_000, 2), (2_100_000, 2)]
TIFS = [
    Tif(
        "buy_gtc_fills_then_rests_remainder",
        ("buy", 5, 2_100_000, "gtc", False),
        ["OrderAccepted", "Trade", "Trade"],
        [(2_000_000, 2), (2_100_000, 2)],
        None,
        "partially_filled",
        (9_700_000, 2_100_000, 8_000_000, 0),  # paid 8.200, the last unit holds 2.100
        [(2_100_000, 1), *BIDS],
    ),
    Tif(
        "buy_gtc_no_cross_rests_whole",
        ("buy", 1, 1_950_000, "gtc", False),
        ["OrderAccepted"],
        [],
        None,
        "active",
        (18_050_000, 1_950_000, 4_000_000, 0),
        [(1_950_000, 1), *BIDS],
    ),
    Tif(
        "buy_ioc_closes_remainder",
        ("buy", 5, 2_100_000, "ioc", False),
        ["OrderAccepted", "Trade", "Trade", "OrderClosed"],
        [(2_000_000, 2), (2_100_000, 2)],
        ("immediate_or_cancel", 1),
        "closed",
        (11_800_000, 0, 8_000_000, 0),
        BIDS,
    ),
    Tif(
        "buy_ioc_fully_filled_is_not_closed",
        ("buy", 3, 2_100_000, "ioc", False),
        ["OrderAccepted", "Trade", "Trade"],
        [(2_000_000, 2), (2_100_000, 1)],
        None,
        "filled",
        (13_900_000, 0, 7_000_000, 0),
        BIDS,
    ),
    Tif(
        "buy_ioc_nothing_crosses",
        ("buy", 1, 1_950_000, "ioc", False),
        ["OrderAccepted", "OrderClosed"],
        [],
        ("immediate_or_cancel", 1),
        "closed",
        START,
        BIDS,
    ),
    Tif(
        "buy_fok_fills_completely",
        ("buy", 4, 2_100_000, "fok", False),
        ["OrderAccepted", "Trade", "Trade"],
        [(2_000_000, 2), (2_100_000, 2)],
        None,
        "filled",
        (11_800_000, 0, 8_000_000, 0),
        BIDS,
    ),
    Tif(
        "buy_fok_short_of_quantity_trades_nothing",
        ("buy", 5, 2_100_000, "fok", False),
        ["OrderAccepted", "OrderClosed"],
        [],
        ("fill_or_kill", 5),
        "closed",
        START,
        BIDS,
    ),
    Tif(
        "buy_fok_short_within_price_trades_nothing",
        ("buy", 3, 2_000_000, "fok", False),
        ["OrderAccepted", "OrderClosed"],
        [],
        ("fill_or_kill", 3),
        "closed",
        START,
        BIDS,
    ),
    Tif(
        "buy_post_only_rests",
        ("buy", 1, 1_990_000, "gtc", True),
        ["OrderAccepted"],
        [],
        None,
        "active",
        (18_010_000, 1_990_000, 4_000_000, 0),
        [(1_990_000, 1), *BIDS],
    ),
    Tif(
        "buy_post_only_would_take_is_rejected",
        ("buy", 1, 2_000_000, "gtc", True),
        ["OrderRejected"],
        [],
        None,
        None,
        START,
        BIDS,
    ),
    Tif(
        "sell_gtc_fills_then_rests_remainder",
        ("sell", 3, 1_850_000, "gtc", False),
        ["OrderAccepted", "Trade"],
        [(1_900_000, 2)],
        None,
        "partially_filled",
        (23_800_000, 0, 1_000_000, 1_000_000),
        [(1_850_000, 1), *ASKS],
    ),
    Tif(
        "sell_ioc_closes_remainder",
        ("sell", 4, 1_850_000, "ioc", False),
        ["OrderAccepted", "Trade", "OrderClosed"],
        [(1_900_000, 2)],
        ("immediate_or_cancel", 2),
        "closed",
        (23_800_000, 0, 2_000_000, 0),
        ASKS,
    ),
    Tif(
        "sell_fok_short_trades_nothing",
        ("sell", 4, 1_850_000, "fok", False),
        ["OrderAccepted", "OrderClosed"],
        [],
        ("fill_or_kill", 4),
        "closed",
        START,
        ASKS,
    ),
    Tif(
        "sell_fok_fills_completely",
        ("sell", 4, 1_800_000, "fok", False),
        ["OrderAccepted", "Trade", "Trade"],
        [(1_900_000, 2), (1_800_000, 2)],
        None,
        "filled",
        (27_400_000, 0, 0, 0),
        ASKS,
    ),
    Tif(
        "sell_post_only_rests",
        ("sell", 1, 1_910_000, "gtc", True),
        ["OrderAccepted"],
        [],
        None,
        "active",
        (20_000_000, 0, 3_000_000, 1_000_000),
        [(1_910_000, 1), *ASKS],
    ),
    Tif(
        "sell_post_only_would_take_is_rejected",
        ("sell", 1, 1_900_000, "gtc", True),
        ["OrderRejected"],
        [],
        None,
        None,
        START,
        ASKS,
    ),
]


def _book() -> Market:
    m = Market()
    m.supplier("s1", 2)
    m.supplier("s2", 2)
    m.account("b1", 10_000_000)
    m.account("b2", 10_000_000)
    m.ask("s1", 2, 2_000_000)
    m.ask("s2", 2, 2_100_000)
    m.bid("b1", 2, 1_900_000)
    m.bid("b2", 2, 1_800_000)
    m.supplier("c1", 4, usd_micros=20_000_000)
    return m


@pytest.mark.parametrize("s", TIFS, ids=lambda s: s.name)
def test_time_in_force(s: Tif) -> None:
    m = _book()
    side, units, price, tif, post_only = s.order
    outcome = m.place("c1", side, units, price, time_in_force=tif, post_only=post_only)
    assert kinds(outcome.events) == s.kinds
    assert [(p, q) for p, q, _, _ in trades(outcome)] == s.trades
    closes = of_type(outcome.events, OrderClosed)
    assert [(c.closure_reason, c.remaining_units) for c in closes] == (
        [s.closed] if s.closed else []
    )
    if s.status is None:
        (rejected,) = of_type(outcome.events, OrderRejected)
        assert rejected.reason == "post_only_would_take"
        assert outcome.seq not in m.state.orders
    else:
        assert m.status(outcome.seq) == s.status
    assert (*m.usd("c1"), *m.tokens("c1")[:2]) == s.after
    book = m.state.books[TP]
    assert list((book.bids if side == "buy" else book.asks).depth()) == s.own_side


@pytest.mark.parametrize(
    ("order_type", "tif", "price"),
    [
        ("market", "gtc", None),
        ("market", "gtc", 2_000_000),
        ("limit", "ioc", 1_000_000),
        ("limit", "fok", 1_000_000),
        ("market", "ioc", None),
        ("market", "fok", None),
    ],
    ids=["market", "market_with_worst_price", "limit_ioc", "limit_fok", "market_ioc", "market_fok"],
)
def test_post_only_is_only_for_gtc_limits(order_type: str, tif: str, price: int | None) -> None:
    m = _book()
    before = m.balances()
    outcome = m.place(
        "c1", "buy", 1, price, order_type=order_type, time_in_force=tif, post_only=True
    )
    assert [(type(e).__name__, e.reason) for e in outcome.events] == [
        ("OrderRejected", "post_only_not_limit")
    ]
    assert m.balances() == before

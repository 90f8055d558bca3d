"""Matching follows price-time priority, trades at the maker's price across many makers, numbers
trades per market, and prevents self-trades by cancelling the resting order."""

from typing import NamedTuple

import pytest

from gridmarket.core.events import OrderCancelled, Trade
from gridmarket.core.ids import AccountId, OrderId, TradeId

from .helpers import TP, TS, Market, kinds, of_type, order_id, trades


class Priority(NamedTuple):
    name: str
    #: Resting orders, placed in this order: (account, side, units, price).
    makers: list[tuple[str, str, int, int]]
    #: The incoming limit order: (side, units, price); its account is "t".
    taker: tuple[str, int, int]
    #: Expected trades in order: (index of the maker in `makers`, price, units).
    trades: list[tuple[int, int, int]]
    taker_status: str
    #: Book after: (price, open units) from the best outwards.
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


PRIORITY = [
    Priority(
        "better_ask_first_even_if_later",
        [("s1", "sell", 2, 2_100_000), ("s2", "sell", 2, 2_000_000)],
        ("buy", 2, 2_100_000),
        [(1, 2_000_000, 2)],
        "filled",
        [],
        [(2_100_000, 2)],
    ),
    Priority(
        "earlier_ask_first_at_equal_price",
        [("s1", "sell", 2, 2_000_000), ("s2", "sell", 2, 2_000_000)],
        ("buy", 2, 2_000_000),
        [(0, 2_000_000, 2)],
        "filled",
        [],
        [(2_000_000, 2)],
    ),
    Priority(
        "trade_at_maker_price_not_taker_limit",
        [("s1", "sell", 1, 1_500_000)],
        ("buy", 1, 2_000_000),
        [(0, 1_500_000, 1)],
        "filled",
        [],
        [],
    ),
    Priority(
        "partial_fills_across_three_makers",
        [("s1", "sell", 1, 2_000_000), ("s2", "sell", 2, 2_000_000), ("s3", "sell", 3, 2_010_000)],
        ("buy", 5, 2_010_000),
        [(0, 2_000_000, 1), (1, 2_000_000, 2), (2, 2_010_000, 2)],
        "filled",
        [],
        [(2_010_000, 1)],
    ),
    Priority(
        "limit_stops_at_its_price_and_rests",
        [("s1", "sell", 1, 2_000_000), ("s2", "sell", 1, 2_200_000)],
        ("buy", 3, 2_100_000),
        [(0, 2_000_000, 1)],
        "partially_filled",
        [(2_100_000, 2)],
        [(2_200_000, 1)],
    ),
    Priority(
        "no_cross_rests_whole",
        [("s1", "sell", 1, 2_000_000)],
        ("buy", 1, 1_999_000),
        [],
        "active",
        [(1_999_000, 1)],
        [(2_000_000, 1)],
    ),
    Priority(
        "better_bid_first_for_a_sell",
        [("b1", "buy", 2, 1_900_000), ("b2", "buy", 2, 2_000_000)],
        ("sell", 3, 1_900_000),
        [(1, 2_000_000, 2), (0, 1_900_000, 1)],
        "filled",
        [(1_900_000, 1)],
        [],
    ),
    Priority(
        "earlier_bid_first_at_equal_price",
        [("b1", "buy", 1, 2_000_000), ("b2", "buy", 1, 2_000_000), ("b3", "buy", 1, 2_000_000)],
        ("sell", 2, 2_000_000),
        [(0, 2_000_000, 1), (1, 2_000_000, 1)],
        "filled",
        [(2_000_000, 1)],
        [],
    ),
    Priority(
        "sell_trades_at_higher_maker_bid",
        [("b1", "buy", 1, 2_500_000)],
        ("sell", 1, 2_000_000),
        [(0, 2_500_000, 1)],
        "filled",
        [],
        [],
    ),
    Priority(
        "partially_filled_maker_keeps_its_place",
        [("s1", "sell", 3, 2_000_000), ("s2", "sell", 3, 2_000_000)],
        ("buy", 4, 2_000_000),
        [(0, 2_000_000, 3), (1, 2_000_000, 1)],
        "filled",
        [],
        [(2_000_000, 2)],
    ),
]


def _traders(m: Market) -> None:
    for name in ("s1", "s2", "s3"):
        m.supplier(name, 10)
    for name in ("b1", "b2", "b3"):
        m.account(name, 100_000_000)
    m.supplier("t", 10, usd_micros=100_000_000)


def _depth(m: Market, bids: bool) -> list[tuple[int, int]]:
    book = m.state.books[TP]
    return list((book.bids if bids else book.asks).depth())


@pytest.mark.parametrize("s", PRIORITY, ids=lambda s: s.name)
def test_price_time_priority(s: Priority) -> None:
    m = Market()
    _traders(m)
    maker_ids = [order_id(m.place(acct, side, qty, price)) for acct, side, qty, price in s.makers]
    side, qty, price = s.taker
    outcome = m.place("t", side, qty, price)
    taker_id = order_id(outcome)

    expected = [
        (price_, units, maker_ids[i], n + 1) for n, (i, price_, units) in enumerate(s.trades)
    ]
    assert trades(outcome) == expected
    assert m.status(taker_id) == s.taker_status
    assert _depth(m, bids=True) == s.bids
    assert _depth(m, bids=False) == s.asks


def test_trade_event_carries_everything_to_audit_it_alone() -> None:
    m = Market()
    m.supplier("s1", 5)
    ask = m.ask("s1", 5, 2_000_000)
    m.account("c1", 10_000_000)
    m.advance(250)
    outcome = m.buy("c1", 2, 2_500_000)
    taker = order_id(outcome)
    assert of_type(outcome.events, Trade) == [
        Trade(
            seq=outcome.seq,
            ts_ms=m.now_ms,
            trade_id=TradeId(1),
            instrument_id=TP,
            market_seq=1,
            price_usd_micros=2_000_000,
            quantity_units=2,
            buyer_account_id=AccountId("c1"),
            seller_account_id=AccountId("s1"),
            maker_order_id=ask,
            taker_order_id=taker,
            taker_side="buy",
            buyer_fee_usd_micros=0,
            seller_fee_usd_micros=0,
        )
    ]
    assert taker == outcome.seq  # an order's id is the seq of the command that placed it


def test_multi_maker_fill_moves_exact_balances() -> None:
    m = Market()
    for name in ("s1", "s2", "s3"):
        m.supplier(name, 3)
    m.ask("s1", 1, 2_000_000)
    m.ask("s2", 2, 2_000_000)
    m.ask("s3", 3, 2_010_000)
    m.account("c1", 100_000_000)
    m.buy("c1", 5, 2_010_000)
    # 1 × 2.000 + 2 × 2.000 + 2 × 2.010 = 10.020 USD; the limit reserved 5 × 2.010 = 10.050.
    assert m.usd("c1") == (89_980_000, 0)
    assert m.usd("s1") == (2_000_000, 0)
    assert m.usd("s2") == (4_000_000, 0)
    assert m.usd("s3") == (4_020_000, 0)
    assert m.tokens("c1") == (5_000_000, 0, 0, 0)
    assert m.tokens("s1") == (2_000_000, 0, 0, 0)
    assert m.tokens("s2") == (1_000_000, 0, 0, 0)
    assert m.tokens("s3") == (0, 1_000_000, 0, 0)


def test_market_seq_counts_per_instrument_independently() -> None:
    m = Market()
    m.supplier("s1", 10)
    m.supplier("s1", 10, TS)
    m.account("c1", 100_000_000)
    m.ask("s1", 10, 2_000_000)
    m.ask("s1", 10, 1_000_000, instrument_id=TS)
    seqs = []
    price = {TP: 2_000_000, TS: 1_000_000}
    for instrument_id in (TP, TS, TP, TP, TS):
        outcome = m.buy("c1", 1, price[instrument_id], instrument_id=instrument_id)
        (trade,) = of_type(outcome.events, Trade)
        seqs.append((trade.instrument_id, trade.market_seq, trade.trade_id))
    assert seqs == [(TP, 1, 1), (TS, 1, 2), (TP, 2, 3), (TP, 3, 4), (TS, 2, 5)]
    assert (m.state.books[TP].market_seq, m.state.books[TS].market_seq) == (3, 2)


class SelfTrade(NamedTuple):
    name: str
    #: Resting orders in this order: (account, side, units, price); "t" is the taker's account.
    makers: list[tuple[str, str, int, int]]
    taker: tuple[str, int, int]
    #: Expected events of the taker's command, by kind.
    kinds: list[str]
    #: (index of the cancelled own order, remaining units it had).
    cancelled: list[tuple[int, int]]
    #: (maker index, price, units) of each trade.
    trades: list[tuple[int, int, int]]
    #: Taker's (USD available, USD locked, trading available, trading locked) after.
    taker_after: tuple[int, int, int, int]


SELF_TRADES = [
    SelfTrade(
        "own_ask_cancelled_then_trades_with_next",
        [("t", "sell", 2, 2_000_000), ("s1", "sell", 1, 2_000_000)],
        ("buy", 1, 2_000_000),
        ["OrderAccepted", "OrderCancelled", "Trade"],
        [(0, 2)],
        [(1, 2_000_000, 1)],
        # 10 USD − 2.000; all 5 own units back in trading plus the one bought.
        (8_000_000, 0, 6_000_000, 0),
    ),
    SelfTrade(
        "own_better_ask_cancelled_worse_price_trades",
        [("t", "sell", 1, 1_900_000), ("s1", "sell", 1, 2_000_000)],
        ("buy", 1, 2_000_000),
        ["OrderAccepted", "OrderCancelled", "Trade"],
        [(0, 1)],
        [(1, 2_000_000, 1)],
        (8_000_000, 0, 6_000_000, 0),
    ),
    SelfTrade(
        "only_own_liquidity_then_rests",
        [("t", "sell", 1, 2_000_000)],
        ("buy", 2, 2_000_000),
        ["OrderAccepted", "OrderCancelled"],
        [(0, 1)],
        [],
        # The buy rests for 2 × 2.000 = 4.000 locked.
        (6_000_000, 4_000_000, 5_000_000, 0),
    ),
    SelfTrade(
        "own_bid_cancelled_for_a_sell",
        [("s1", "buy", 1, 2_000_000), ("t", "buy", 1, 2_100_000)],
        ("sell", 2, 2_000_000),
        ["OrderAccepted", "OrderCancelled", "Trade"],
        [(1, 1)],
        [(0, 2_000_000, 1)],
        # Its bid's 2.100 released; one unit sold at 2.000; one unit rests on the ask side.
        (12_000_000, 0, 3_000_000, 1_000_000),
    ),
]


@pytest.mark.parametrize("s", SELF_TRADES, ids=lambda s: s.name)
def test_self_trade_prevention_cancels_resting_and_continues(s: SelfTrade) -> None:
    m = Market()
    m.supplier("t", 5, usd_micros=10_000_000)
    m.supplier("s1", 5, usd_micros=10_000_000)
    ids = [order_id(m.place(acct, side, qty, price)) for acct, side, qty, price in s.makers]
    side, qty, price = s.taker
    outcome = m.place("t", side, qty, price)
    assert kinds(outcome.events) == s.kinds
    cancels = of_type(outcome.events, OrderCancelled)
    assert [(c.order_id, c.reason, c.remaining_units) for c in cancels] == [
        (ids[i], "self_trade_prevention", units) for i, units in s.cancelled
    ]
    for i, _ in s.cancelled:
        assert m.status(ids[i]) == "cancelled"
    assert [(p, q, maker) for p, q, maker, _ in trades(outcome)] == [
        (p, q, ids[i]) for i, p, q in s.trades
    ]
    assert (*m.usd("t"), *m.tokens("t")[:2]) == s.taker_after
    assert all(t.buyer_account_id != t.seller_account_id for t in of_type(outcome.events, Trade))


def test_order_ids_are_command_seqs() -> None:
    m = Market()
    m.supplier("s1", 5)
    outcome = m.sell("s1", 1, 2_000_000)
    assert order_id(outcome) == OrderId(outcome.seq)

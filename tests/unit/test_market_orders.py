"""Market orders sweep the book and never rest: the remainder is closed at the empty book, the
worst price, the price band or the end of the buyer's USD (fees included, never overspent)."""

from typing import NamedTuple

import pytest

from gridmarket.core.events import OrderClosed, Trade

from .helpers import TP, Market, of_type, trades, variant


class Sweep(NamedTuple):
    name: str
    #: The taker fee in bps (maker fee 0).
    taker_fee_bps: int
    #: Last trade price before the order (None: the market has not traded yet).
    last_price: int | None
    #: Resting orders on the opposite side: (units, price), each from its own account.
    book: list[tuple[int, int]]
    #: The market order of "c1": (side, units, worst price or None); c1's USD before it.
    order: tuple[str, int, int | None]
    usd_before: int
    #: (price, units) of each trade, and their buyer fees.
    trades: list[tuple[int, int]]
    fees: list[int]
    #: (closure reason, remaining units), or None when filled.
    closed: tuple[str, int] | None
    #: c1's USD available after (it never has USD locked by a market order).
    usd_after: int


SWEEPS = [
    Sweep(
        "buy_sweeps_levels_best_first",
        0,
        None,
        [(2, 2_000_000), (2, 2_500_000)],
        ("buy", 3, None),
        100_000_000,
        [(2_000_000, 2), (2_500_000, 1)],
        [0, 0],
        None,
        93_500_000,
    ),
    Sweep(
        "buy_on_empty_book_closes_no_liquidity",
        0,
        None,
        [],
        ("buy", 1, None),
        100_000_000,
        [],
        [],
        ("no_liquidity", 1),
        100_000_000,
    ),
    Sweep(
        "buy_remainder_closes_no_liquidity",
        0,
        None,
        [(2, 2_000_000)],
        ("buy", 5, None),
        100_000_000,
        [(2_000_000, 2)],
        [0],
        ("no_liquidity", 3),
        96_000_000,
    ),
    Sweep(
        "buy_worst_price_closes_price_limit",
        0,
        None,
        [(2, 2_000_000), (2, 2_500_000)],
        ("buy", 4, 2_200_000),
        100_000_000,
        [(2_000_000, 2)],
        [0],
        ("price_limit", 2),
        96_000_000,
    ),
    Sweep(
        "buy_worst_price_is_inclusive",
        0,
        None,
        [(2, 2_000_000), (2, 2_500_000)],
        ("buy", 4, 2_500_000),
        100_000_000,
        [(2_000_000, 2), (2_500_000, 2)],
        [0, 0],
        None,
        91_000_000,
    ),
    Sweep(
        "buy_bounded_by_usd",
        0,
        None,
        [(2, 2_000_000), (2, 2_500_000)],
        ("buy", 4, None),
        5_000_000,
        [(2_000_000, 2)],
        [0],
        ("insufficient_funds", 2),
        1_000_000,
    ),
    Sweep(
        "buy_bounded_by_usd_spends_it_exactly",
        0,
        None,
        [(2, 2_000_000), (2, 2_500_000)],
        ("buy", 4, None),
        6_500_000,
        [(2_000_000, 2), (2_500_000, 1)],
        [0, 0],
        ("insufficient_funds", 1),
        0,
    ),
    Sweep(
        # 1 unit costs 2.000 + 0.020 fee; 2 units 4.040; 3 units 6.060 > 4.050.
        "buy_bounded_by_usd_fee_included",
        100,
        None,
        [(3, 2_000_000)],
        ("buy", 3, None),
        4_050_000,
        [(2_000_000, 2)],
        [40_000],
        ("insufficient_funds", 1),
        10_000,
    ),
    Sweep(
        # 2 units would be 4.000 + 0.040: 1 micro-USD short, so only 1 unit.
        "buy_one_micro_short_of_the_fee",
        100,
        None,
        [(3, 2_000_000)],
        ("buy", 3, None),
        4_039_999,
        [(2_000_000, 1)],
        [20_000],
        ("insufficient_funds", 2),
        2_019_999,
    ),
    Sweep(
        # Fees run as the ceiling of the sum: 0.333 × 7 bps = 233.1 → 234, then 466.2 → 467.
        "buy_bounded_by_usd_with_running_fee_ceiling",
        7,
        None,
        [(1, 333_000), (1, 333_000), (1, 333_000)],
        ("buy", 3, None),
        666_467,
        [(333_000, 1), (333_000, 1)],
        [234, 233],
        ("insufficient_funds", 1),
        0,
    ),
    Sweep(
        "buy_cannot_afford_one_unit",
        0,
        None,
        [(1, 2_000_000)],
        ("buy", 1, None),
        1_999_999,
        [],
        [],
        ("insufficient_funds", 1),
        1_999_999,
    ),
    Sweep(
        # Band ±50% around the last trade before the order (2.000): up to 3.000. The
        # reference does not move with the order's own fills (else 3.001 would be in band).
        "buy_stops_at_price_band",
        0,
        2_000_000,
        [(1, 2_500_000), (1, 3_000_000), (1, 3_001_000)],
        ("buy", 3, None),
        100_000_000,
        [(2_500_000, 1), (3_000_000, 1)],
        [0, 0],
        ("price_band", 1),
        94_500_000,
    ),
    Sweep(
        "buy_no_band_before_first_trade",
        0,
        None,
        [(1, 2_500_000), (1, 3_000_000), (1, 3_001_000)],
        ("buy", 3, None),
        100_000_000,
        [(2_500_000, 1), (3_000_000, 1), (3_001_000, 1)],
        [0, 0, 0],
        None,
        91_499_000,
    ),
    Sweep(
        "sell_sweeps_bids_best_first",
        0,
        None,
        [(2, 2_000_000), (2, 1_900_000)],
        ("sell", 3, None),
        0,
        [(2_000_000, 2), (1_900_000, 1)],
        [0, 0],
        None,
        5_900_000,
    ),
    Sweep(
        "sell_worst_price_closes_price_limit",
        0,
        None,
        [(2, 2_000_000), (2, 1_900_000)],
        ("sell", 3, 1_950_000),
        0,
        [(2_000_000, 2)],
        [0],
        ("price_limit", 1),
        4_000_000,
    ),
    Sweep(
        "sell_remainder_closes_no_liquidity",
        0,
        None,
        [(1, 2_000_000)],
        ("sell", 3, None),
        0,
        [(2_000_000, 1)],
        [0],
        ("no_liquidity", 2),
        2_000_000,
    ),
    Sweep(
        # Band ±50% around 2.000: down to 1.000.
        "sell_stops_at_price_band",
        0,
        2_000_000,
        [(1, 1_500_000), (1, 1_000_000), (1, 999_000)],
        ("sell", 3, None),
        0,
        [(1_500_000, 1), (1_000_000, 1)],
        [0, 0],
        ("price_band", 1),
        2_500_000,
    ),
]


def _setup(s: Sweep) -> Market:
    m = Market(variant(TP, taker_fee_bps=s.taker_fee_bps))
    side = s.order[0]
    for n, (units, price) in enumerate(s.book):
        if side == "buy":
            m.supplier(f"s{n}", units)
            m.ask(f"s{n}", units, price)
        else:
            m.account(f"b{n}", units * price)
            m.bid(f"b{n}", units, price)
    if s.last_price is not None:
        # One trade at the last price, resting on the side the order does not take from.
        m.supplier("x", 1)
        m.account("y", 10_000_000)
        if side == "buy":
            m.bid("y", 1, s.last_price)
            m.sell("x", 1, s.last_price)
        else:
            m.ask("x", 1, s.last_price)
            m.buy("y", 1, s.last_price)
        assert m.state.books[TP].last_price_usd_micros == s.last_price
    m.supplier("c1", 0 if side == "buy" else s.order[1], usd_micros=s.usd_before)
    return m


@pytest.mark.parametrize("s", SWEEPS, ids=lambda s: s.name)
def test_market_order(s: Sweep) -> None:
    m = _setup(s)
    side, units, worst = s.order
    fees_before = m.bal("operator/usd/fees")
    outcome = m.place("c1", side, units, worst, order_type="market")
    assert [(p, q) for p, q, _, _ in trades(outcome)] == s.trades
    assert [t.buyer_fee_usd_micros for t in of_type(outcome.events, Trade)] == s.fees
    closes = of_type(outcome.events, OrderClosed)
    assert [(c.closure_reason, c.remaining_units) for c in closes] == (
        [s.closed] if s.closed else []
    )
    assert m.status(outcome.seq) == ("closed" if s.closed else "filled")
    # Never rests, never holds anything.
    assert outcome.seq not in m.state.accounts["c1"].open_order_ids
    assert m.usd("c1") == (s.usd_after, 0)
    assert m.bal("operator/usd/fees") - fees_before == sum(s.fees)
    bought = sum(q for _, q in s.trades)
    if side == "buy":
        assert m.tokens("c1")[:2] == (bought * 1_000_000, 0)
        # Spent exactly the notional plus fees, never more than it had.
        spent = sum(p * q for p, q in s.trades) + sum(s.fees)
        assert s.usd_before - s.usd_after == spent <= s.usd_before
    else:
        assert m.tokens("c1")[:2] == ((units - bought) * 1_000_000, 0)


def test_market_buy_fok_needs_usd_for_everything() -> None:
    m = Market(variant(TP, taker_fee_bps=100))
    m.supplier("s1", 3)
    m.ask("s1", 3, 2_000_000)
    # 3 units cost 6.000 + 0.060 fee; one micro-USD less is not enough for all of them.
    m.supplier("c1", usd_micros=6_059_999)
    outcome = m.buy("c1", 3, order_type="market", time_in_force="fok")
    assert [
        (c.closure_reason, c.remaining_units) for c in of_type(outcome.events, OrderClosed)
    ] == [("fill_or_kill", 3)]
    assert trades(outcome) == []
    m.deposit("c1", 1)
    outcome = m.buy("c1", 3, order_type="market", time_in_force="fok")
    assert [(p, q) for p, q, _, _ in trades(outcome)] == [(2_000_000, 3)]
    assert m.usd("c1") == (0, 0)

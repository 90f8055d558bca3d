"""Maker and taker fees go to operator/usd/fees in basis points, a buy locks its notional plus a
fee reserve rounded up, split fills never cost more than one fill, and what better prices free
from a buy's hold is released at each fill."""

from typing import Any, NamedTuple

import pytest

from gridmarket.core.events import OrderAccepted, Posting, Trade
from gridmarket.core.ids import AccountId

from .helpers import TP, Market, of_type, order_id, variant

FEES = "operator/usd/fees"


class Fee(NamedTuple):
    name: str
    maker_bps: int
    taker_bps: int
    #: Resting order: (account, side, units, price); then the taker: (account, side, units,
    #: limit price or None for a market order). s1 sells, c1 buys.
    maker: tuple[str, str, int, int]
    taker: tuple[str, str, int, int | None]
    buyer_fee: int
    seller_fee: int
    #: c1 (buyer) USD available after (it starts with 100 USD), s1 (seller) USD after.
    buyer_usd: int
    seller_usd: int


FEE_ROWS = [
    Fee(
        "taker_buy_maker_sell",
        10,
        20,
        ("s1", "sell", 3, 2_000_000),
        ("c1", "buy", 3, 2_000_000),
        12_000,
        6_000,
        93_988_000,
        5_994_000,
    ),
    Fee(
        "taker_sell_maker_buy",
        10,
        20,
        ("c1", "buy", 3, 2_000_000),
        ("s1", "sell", 3, 2_000_000),
        6_000,
        12_000,
        93_994_000,
        5_988_000,
    ),
    Fee(
        "taker_buy_better_price",
        10,
        20,
        ("s1", "sell", 3, 2_000_000),
        ("c1", "buy", 3, 2_500_000),
        12_000,
        6_000,
        93_988_000,
        5_994_000,
    ),
    Fee(
        "market_buy_pays_taker_fee",
        10,
        20,
        ("s1", "sell", 3, 2_000_000),
        ("c1", "buy", 3, None),
        12_000,
        6_000,
        93_988_000,
        5_994_000,
    ),
    Fee(
        "market_sell_pays_taker_fee",
        10,
        20,
        ("c1", "buy", 3, 2_000_000),
        ("s1", "sell", 3, None),
        6_000,
        12_000,
        93_994_000,
        5_988_000,
    ),
    # 0.333 × 7 bps = 233.1 micro-USD: rounded up to 234 on both sides.
    Fee(
        "rounded_up",
        7,
        7,
        ("s1", "sell", 1, 333_000),
        ("c1", "buy", 1, 333_000),
        234,
        234,
        99_666_766,
        332_766,
    ),
    # 0.001 × 1 bps = 0.1 micro-USD: still 1.
    Fee(
        "tiny_fee_is_one_micro",
        0,
        1,
        ("s1", "sell", 1, 1_000),
        ("c1", "buy", 1, 1_000),
        1,
        0,
        99_998_999,
        1_000,
    ),
    Fee(
        "no_fees",
        0,
        0,
        ("s1", "sell", 3, 2_000_000),
        ("c1", "buy", 3, 2_000_000),
        0,
        0,
        94_000_000,
        6_000_000,
    ),
]


@pytest.mark.parametrize("s", FEE_ROWS, ids=lambda s: s.name)
def test_fees_go_to_the_operator(s: Fee) -> None:
    m = Market(variant(TP, maker_fee_bps=s.maker_bps, taker_fee_bps=s.taker_bps))
    m.supplier("s1", 3)
    m.account("c1", 100_000_000)
    m.place(*s.maker)
    account, side, units, price = s.taker
    outcome = m.place(account, side, units, price)
    (trade,) = of_type(outcome.events, Trade)
    assert (trade.buyer_fee_usd_micros, trade.seller_fee_usd_micros) == (s.buyer_fee, s.seller_fee)
    assert m.bal(FEES) == s.buyer_fee + s.seller_fee
    assert m.usd("c1") == (s.buyer_usd, 0)
    assert m.usd("s1") == (s.seller_usd, 0)
    fee_postings = [p for p in outcome.postings if p.credit == FEES]
    assert sorted(p.amount for p in fee_postings) == sorted(
        f for f in (s.buyer_fee, s.seller_fee) if f
    )


class Lock(NamedTuple):
    name: str
    maker_bps: int
    taker_bps: int
    units: int
    price: int | None
    locked: int


LOCKS = [
    Lock("no_fee", 0, 0, 3, 2_000_000, 6_000_000),
    Lock("taker_rate", 10, 20, 3, 2_000_000, 6_012_000),
    Lock("higher_of_maker_and_taker", 20, 10, 3, 2_000_000, 6_012_000),
    Lock("rounded_up", 0, 7, 1, 333_000, 333_234),  # 233.1 → 234
    Lock("rounded_up_on_the_whole", 0, 7, 3, 333_000, 999_700),  # 699.3 → 700
    Lock("tiny_reserve", 0, 1, 1, 1_000, 1_001),  # 0.1 → 1
    Lock("market_buy_locks_nothing", 10, 20, 3, None, 0),
]


@pytest.mark.parametrize("s", LOCKS, ids=lambda s: s.name)
def test_a_buy_locks_notional_plus_fee_reserve(s: Lock) -> None:
    m = Market(variant(TP, maker_fee_bps=s.maker_bps, taker_fee_bps=s.taker_bps))
    m.account("c1", 10_000_000)
    outcome = m.buy("c1", s.units, s.price)
    (accepted,) = of_type(outcome.events, OrderAccepted)
    assert accepted.locked_usd_micros == s.locked
    if s.price is not None:
        assert m.usd("c1") == (10_000_000 - s.locked, s.locked)
        assert m.state.orders[accepted.order_id].locked_usd_micros == s.locked


def test_exactly_the_reserve_is_enough() -> None:
    m = Market(variant(TP, taker_fee_bps=7))
    m.account("c1", 333_234)
    assert of_type(m.buy("c1", 1, 333_000).events, OrderAccepted)
    assert m.usd("c1") == (0, 333_234)


class Split(NamedTuple):
    name: str
    #: Asks in order, each its own order: (seller, units, price); then c1's buys: (units, price).
    asks: list[tuple[str, int, int]]
    buys: list[tuple[int, int]]
    #: (buyer fee, seller fee) per trade.
    fees: list[tuple[int, int]]


# 7 bps maker and taker. One fill of 3 × 0.333 pays ceil(699.3) = 700 on each side.
SPLITS = [
    Split("one_fill", [("s1", 3, 333_000)], [(3, 333_000)], [(700, 700)]),
    # The taker's fees are the running ceiling: 233.1→234, 466.2→467, 699.3→700.
    Split(
        "one_taker_three_makers",
        [("s1", 1, 333_000), ("s2", 1, 333_000), ("s3", 1, 333_000)],
        [(3, 333_000)],
        [(234, 234), (233, 234), (233, 234)],
    ),
    # The maker's fees too, across three taker orders.
    Split(
        "one_maker_three_takers",
        [("s1", 3, 333_000)],
        [(1, 333_000), (1, 333_000), (1, 333_000)],
        [(234, 234), (234, 233), (234, 233)],
    ),
    # Different prices: 233.1→234, 466.9→467 (233), 701.4→702 (235); one fill of the total
    # notional 1.002 would pay ceil(701.4) = 702 too.
    Split(
        "one_taker_three_prices",
        [("s1", 1, 333_000), ("s2", 1, 334_000), ("s3", 1, 335_000)],
        [(3, 335_000)],
        [(234, 234), (233, 234), (235, 235)],
    ),
]


@pytest.mark.parametrize("s", SPLITS, ids=lambda s: s.name)
def test_split_fills_never_cost_more_than_one_fill(s: Split) -> None:
    m = Market(variant(TP, maker_fee_bps=7, taker_fee_bps=7))
    for seller, units, price in s.asks:
        m.supplier(seller, units)
        m.ask(seller, units, price)
    m.account("c1", 10_000_000)
    fees = []
    for units, price in s.buys:
        fees += [
            (t.buyer_fee_usd_micros, t.seller_fee_usd_micros)
            for t in of_type(m.buy("c1", units, price).events, Trade)
        ]
    assert fees == s.fees
    assert m.bal(FEES) == sum(b + s_ for b, s_ in s.fees)


def test_price_improvement_is_released_at_each_fill() -> None:
    m = Market(variant(TP, maker_fee_bps=10, taker_fee_bps=20))
    m.supplier("s1", 1)
    m.supplier("s2", 1)
    m.supplier("s3", 1)
    m.ask("s1", 1, 2_000_000)
    m.ask("s2", 1, 2_200_000)
    m.account("c1", 10_000_000)
    outcome = m.buy("c1", 3, 2_500_000)
    seq = outcome.seq
    c1a, c1l = "c1/usd/available", "c1/usd/locked"
    assert outcome.postings == [
        # Lock 3 × 2.500 + ceil(7.500 × 20 bps) = 7.515.
        Posting(seq, "usd", c1a, c1l, 7_515_000),
        # Fill 1 @ 2.000: fee 4,000 (s1 pays 2,000). 2 units left need 5.000 + 14,000 − 4,000.
        Posting(seq, "usd", c1l, "s1/usd/available", 2_000_000),
        Posting(seq, "usd", c1l, FEES, 4_000),
        Posting(seq, "usd", "s1/usd/available", FEES, 2_000),
        Posting(seq, "usd", c1l, c1a, 501_000),
        Posting(
            seq, TP, "s1/text-prime/trading_locked", "c1/text-prime/trading_available", 1_000_000
        ),
        # Fill 2 @ 2.200: fee ceil(8,400) − 4,000 = 4,400. 1 unit left needs 2.500 + 13,400 − 8,400.
        Posting(seq, "usd", c1l, "s2/usd/available", 2_200_000),
        Posting(seq, "usd", c1l, FEES, 4_400),
        Posting(seq, "usd", "s2/usd/available", FEES, 2_200),
        Posting(seq, "usd", c1l, c1a, 300_600),
        Posting(
            seq, TP, "s2/text-prime/trading_locked", "c1/text-prime/trading_available", 1_000_000
        ),
    ]
    oid = order_id(outcome)
    assert m.state.orders[oid].locked_usd_micros == 2_505_000
    assert m.usd("c1") == (3_286_600, 2_505_000)
    # The rest fills as maker at 2.500: fee at the maker rate, ceil(10,900) − 8,400 = 2,500.
    maker = m.sell("s3", 1, 2_500_000)
    (trade,) = of_type(maker.events, Trade)
    assert (trade.buyer_fee_usd_micros, trade.seller_fee_usd_micros) == (2_500, 5_000)
    assert Posting(maker.seq, "usd", c1l, c1a, 2_500) in maker.postings
    assert m.usd("c1") == (3_289_100, 0)
    assert m.state.orders[oid].locked_usd_micros == 0
    assert m.bal(FEES) == 20_100


def test_locked_usd_equals_the_open_buy_orders_holds() -> None:
    m = Market(variant(TP, maker_fee_bps=13, taker_fee_bps=29))
    for name in ("s1", "s2", "s3"):
        m.supplier(name, 10)
    m.account("c1", 100_000_000)
    m.ask("s1", 2, 1_001_000)
    m.ask("s2", 3, 1_003_000)
    held = []
    for units, price in ((4, 1_002_000), (2, 997_000), (5, 1_004_000)):
        oid = order_id(m.buy("c1", units, price))
        held.append(oid)
    m.sell("s3", 3, 997_000)
    m.sell("s3", 1, 1_002_000)
    open_orders = [m.state.orders[o] for o in held if m.state.orders[o].is_open]
    assert m.usd("c1")[1] == sum(o.locked_usd_micros for o in open_orders) > 0
    # Trades alone moved USD: deposits − fees − paid to sellers = what c1 still has.
    paid = sum(m.usd(s)[0] for s in ("s1", "s2", "s3"))
    assert sum(m.usd("c1")) + paid + m.bal(FEES) == 100_000_000
    assert AccountId("c1") in m.state.accounts


def test_locked_usd_matches_the_holds_after_every_single_fill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gridmarket.core.matching as matching

    checked: list[int] = []
    trade = matching._trade

    def checking_trade(state: Any, *args: Any) -> None:
        trade(state, *args)
        for account_id, account in state.accounts.items():
            holds = sum(
                o.locked_usd_micros
                for o in state.orders.values()
                if o.account_id == account_id and o.is_buy and o.is_open
            )
            assert state.ledger.get(account.usd_locked) == holds
        checked.append(state.next_trade_id - 1)

    monkeypatch.setattr(matching, "_trade", checking_trade)
    m = Market(variant(TP, maker_fee_bps=13, taker_fee_bps=29))
    for n, name in enumerate(("s1", "s2", "s3", "s4")):
        m.supplier(name, 3)
        m.ask(name, 1, 997_000 + 3_000 * n)
        m.ask(name, 1, 1_011_000 + 7_000 * n)
    m.account("c1", 100_000_000)
    m.buy("c1", 7, 1_040_000)  # sweeps 7 asks, releasing at each fill
    m.bid("c1", 5, 990_000)
    m.sell("s1", 1, 990_000)
    m.sell("s2", 1, 990_000)
    assert checked == list(range(1, 10))

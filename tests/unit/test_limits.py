"""Per-account open-order limits count only resting orders across all markets, and the price band
applies to limit prices only once a market has traded, ±band_bps around its last trade."""

from typing import NamedTuple

import pytest

from gridmarket.core.commands import CancelOrder
from gridmarket.core.events import OrderRejected
from gridmarket.core.ids import AccountId, OrderId

from .helpers import TP, TS, Market, kinds, of_type, order_id, variant


def _reason(outcome: object) -> str | None:
    rejected = of_type(outcome.events, OrderRejected)  # type: ignore[attr-defined]
    return rejected[0].reason if rejected else None


def test_open_order_limit_counts_resting_orders_across_markets() -> None:
    m = Market(max_open_orders_per_account=2)
    m.supplier("s1", 5)
    m.account("c1", 100_000_000)
    first = m.bid("c1", 1, 1_000_000)
    m.bid("c1", 1, 1_000_000, instrument_id=TS)
    assert _reason(m.buy("c1", 1, 1_000_000)) == "too_many_open_orders"
    assert _reason(m.buy("c1", 1, 1_000_000, instrument_id=TS)) == "too_many_open_orders"
    # Orders that never rest are not limited.
    assert kinds(m.buy("c1", 1, 1_000_000, time_in_force="ioc").events) == [
        "OrderAccepted",
        "OrderClosed",
    ]
    assert _reason(m.buy("c1", 1, order_type="market")) is None
    # A cancel frees a slot.
    m.apply(CancelOrder(AccountId("c1"), OrderId(first)))
    third = m.bid("c1", 1, 1_100_000)
    assert _reason(m.buy("c1", 1, 1_000_000)) == "too_many_open_orders"
    # So does a fill.
    m.sell("s1", 1, 1_100_000)
    assert m.status(third) == "filled"
    assert _reason(m.buy("c1", 1, 1_000_000)) is None


def test_open_order_limit_is_per_account() -> None:
    m = Market(max_open_orders_per_account=1)
    m.account("c1", 10_000_000)
    m.account("c2", 10_000_000)
    m.bid("c1", 1, 1_000_000)
    assert _reason(m.buy("c1", 1, 1_000_000)) == "too_many_open_orders"
    assert _reason(m.buy("c2", 1, 1_000_000)) is None


class Band(NamedTuple):
    name: str
    band_bps: int
    #: Prices of the trades before the order (empty: the market has not traded).
    trades: list[int]
    side: str
    price: int
    accepted: bool


BANDS = [
    Band("no_band_before_first_trade_low", 5_000, [], "buy", 1_000, True),
    Band("no_band_before_first_trade_high", 5_000, [], "sell", 1_000_000_000, True),
    Band("default_band_upper_edge", 5_000, [2_000_000], "buy", 3_000_000, True),
    Band("default_band_above", 5_000, [2_000_000], "buy", 3_001_000, False),
    Band("default_band_lower_edge", 5_000, [2_000_000], "sell", 1_000_000, True),
    Band("default_band_below", 5_000, [2_000_000], "sell", 999_000, False),
    Band("default_band_sell_above", 5_000, [2_000_000], "sell", 3_001_000, False),
    Band("default_band_buy_below", 5_000, [2_000_000], "buy", 999_000, False),
    Band("ten_percent_upper_edge", 1_000, [2_000_000], "buy", 2_200_000, True),
    Band("ten_percent_above", 1_000, [2_000_000], "buy", 2_201_000, False),
    Band("ten_percent_lower_edge", 1_000, [2_000_000], "sell", 1_800_000, True),
    Band("ten_percent_below", 1_000, [2_000_000], "sell", 1_799_000, False),
    Band("follows_the_last_trade_up", 5_000, [2_000_000, 2_400_000], "buy", 3_600_000, True),
    Band("follows_the_last_trade_above", 5_000, [2_000_000, 2_400_000], "buy", 3_601_000, False),
    Band(
        "follows_the_last_trade_lower_edge", 5_000, [2_000_000, 2_400_000], "sell", 1_200_000, True
    ),
    Band("follows_the_last_trade_below", 5_000, [2_000_000, 2_400_000], "sell", 1_199_000, False),
]


@pytest.mark.parametrize("s", BANDS, ids=lambda s: s.name)
def test_price_band(s: Band) -> None:
    m = Market(variant(TP, price_band_bps=s.band_bps))
    m.supplier("s1", 10)
    m.account("b1", 100_000_000)
    for price in s.trades:
        m.ask("s1", 1, price)
        m.buy("b1", 1, price)
    assert m.state.books[TP].last_price_usd_micros == (s.trades[-1] if s.trades else None)
    m.supplier("c1", 1, usd_micros=1_000_000_000)
    before = m.balances()
    outcome = m.place("c1", s.side, 1, s.price, time_in_force="ioc")
    if s.accepted:
        assert kinds(outcome.events)[0] == "OrderAccepted"
    else:
        assert _reason(outcome) == "price_out_of_band"
        assert m.balances() == before


def test_band_does_not_limit_market_orders_at_placement() -> None:
    m = Market()
    m.supplier("s1", 2)
    m.account("b1", 100_000_000)
    m.ask("s1", 1, 2_000_000)
    m.buy("b1", 1, 2_000_000)
    # A worst price far outside the band is accepted: the band stops the sweep instead.
    outcome = m.buy("b1", 1, 9_000_000, order_type="market")
    assert kinds(outcome.events) == ["OrderAccepted", "OrderClosed"]
    assert order_id(outcome) == outcome.seq

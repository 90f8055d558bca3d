"""Wire formatting is exact, and the market-data read model bounds its trades and its 24h window.

Also: a subscriber dropped by the feed catches up from the store without losing a trade.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gridmarket.api import wire
from gridmarket.core.commands import (
    CreateAccount,
    Deposit,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
)
from gridmarket.core.events import Trade
from gridmarket.core.ids import AccountId, InstrumentId, OrderId, TradeId
from gridmarket.service.market import MarketService
from gridmarket.service.market_data import MINUTE_MS, MarketData
from gridmarket.service.sequencer import SequencerLimits

TP = InstrumentId("text-prime")
HOUR_MS = 3_600_000
START_MS = 1_767_227_400_000  # 2026-01-01T00:30:00Z


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (2_500_000, "2.500"),
        (0, "0.000"),
        (1_000, "0.001"),
        (1, "0.000001"),
        (1_234_567, "1.234567"),
        (1_230_000, "1.230"),
        (1_234_500, "1.2345"),
        (-100_000, "-0.100"),
        (10**15, "1000000000.000"),
    ],
)
def test_usd_is_an_exact_decimal_string(micros: int, text: str) -> None:
    assert wire.usd(micros) == text


@pytest.mark.parametrize(
    ("numerator", "denominator", "text"),
    [(1, 8, "12.50"), (100_000, 2_500_000, "4.00"), (-1, 3, "-33.33"), (2, 3, "66.67"),
     (-1, 1_000_000, "0.00"), (990, 1_000, "99.00")],
)  # fmt: skip
def test_percent_rounds_half_away_from_zero(numerator: int, denominator: int, text: str) -> None:
    assert wire.percent(numerator, denominator) == text


def test_timestamps_and_decimals() -> None:
    assert wire.timestamp(START_MS + 7) == "2026-01-01T00:30:00.007Z"
    assert wire.price_decimals(1_000) == 3
    assert wire.price_decimals(1) == 6
    assert wire.price_decimals(1_000_000) == 0
    assert wire.units(12) == "12"


def trade(trade_id: int, ts_ms: int, price: int, units: int = 1) -> Trade:
    return Trade(
        trade_id, ts_ms, TradeId(trade_id), TP, trade_id, price, units,
        AccountId("b"), AccountId("s"), OrderId(1), OrderId(2), "buy", 0, 0,
    )  # fmt: skip


def test_the_trade_ring_keeps_only_the_newest() -> None:
    model = MarketData([TP], max_trades=3)
    for i in range(1, 6):
        model.apply_outcome(i, START_MS, [trade(i, START_MS, 2_000_000)])

    assert [t.trade_id for t in model.recent_trades(TP)] == [5, 4, 3]
    assert model.applied_seq == 5
    model.apply_outcome(5, START_MS, [trade(99, START_MS, 1)])  # already applied: ignored
    assert model.last_trade(TP) == trade(5, START_MS, 2_000_000)


def test_the_24h_window_drops_old_minutes() -> None:
    """Trades 25 h, 23 h and 1 min ago: only the last two count, open is the 23 h one."""
    now = START_MS + 30 * HOUR_MS
    model = MarketData([TP], clock=lambda: now)
    model.apply_trade(trade(1, now - 25 * HOUR_MS, 9_000_000, 7))
    model.apply_trade(trade(2, now - 23 * HOUR_MS, 2_000_000, 2))
    model.apply_trade(trade(3, now - MINUTE_MS, 2_500_000, 3))

    stats = model.stats(TP, now)

    assert stats.open_usd_micros == 2_000_000 and stats.close_usd_micros == 2_500_000
    assert stats.high_usd_micros == 2_500_000 and stats.low_usd_micros == 2_000_000
    assert stats.volume_units == 5
    assert stats.quote_volume_usd_micros == 2 * 2_000_000 + 3 * 2_500_000
    assert stats.num_trades == 2
    later = model.stats(TP, now + 24 * HOUR_MS)
    assert later.num_trades == 0 and later.open_usd_micros is None


async def test_a_dropped_subscriber_catches_up_from_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With a feed that holds one outcome, the model is dropped and still sees every trade."""
    limits = SequencerLimits(max_subscriber_outcomes=1)
    url = f"sqlite:///{tmp_path / 'market.db'}"
    async with MarketService.from_url(url, limits=limits, tune_gc=False) as market:
        model = MarketData([TP])
        async with model.following(market):
            s1, b1 = AccountId("s1"), AccountId("b1")
            await market.submit(CreateAccount(s1, is_supplier=True))
            await market.submit(SetSupplierCapacity(s1, TP, 10**9))
            await market.submit(IssueUnits(s1, TP, 50))
            await market.submit(TransferIssuanceToTrading(s1, TP, 50))
            await market.submit(CreateAccount(b1))
            await market.submit(Deposit(b1, 10**9))
            await market.submit(PlaceOrder(s1, TP, "sell", "limit", 50, 2_000_000))
            # Submitted together: they commit as one batch, more than the feed holds.
            await asyncio.gather(
                *(market.submit(PlaceOrder(b1, TP, "buy", "market", 1)) for _ in range(10))
            )
            assert await model.caught_up(market.sequencer.committed_seq, timeout_s=5)

    assert "catching up from the store" in caplog.text
    assert len(model.recent_trades(TP)) == 10
    assert model.stats(TP, model.now_ms()).volume_units == 10

"""OHLCV candles from a table of trades, against hand-computed expectations.

Boundaries: a trade exactly at a period's start belongs to it, one exactly at its end to the
next; empty periods have no candle; weeks start on Monday 00:00 UTC. Retention refuses, and
never silently truncates, a range older than a tier keeps. A naive reference built straight
from the trades agrees with the tiers at every resolution.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gridmarket.core.events import Trade
from gridmarket.core.ids import AccountId, InstrumentId, OrderId, TradeId
from gridmarket.service.candles import (
    DAY_MS,
    DEFAULT_RETENTION,
    HOUR_MS,
    MINUTE_MS,
    RESOLUTIONS_MS,
    WEEK_MS,
    Candle,
    Candles,
    NotRetained,
    period_start_ms,
)
from gridmarket.service.market_data import MarketData

USD = 1_000_000
#: Monday 2026-01-05 00:00:00 UTC (2026-01-01 was a Thursday).
T0 = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp()) * 1_000

#: (ts_ms, price_usd_micros, quantity_units), in command order.
TRADES = [
    (T0 - 1, 9 * USD, 1),  # the last millisecond of the week before
    (T0, 2 * USD, 1),  # exactly at the start of every period
    (T0 + MINUTE_MS - 1, 2_500_000, 2),  # the last millisecond of the first minute
    (T0 + MINUTE_MS, 1_500_000, 3),  # exactly at the first minute's end: the next minute
    (T0 + 4 * MINUTE_MS + 30_000, 3 * USD, 1),  # still in the first 5 minutes
    (T0 + 5 * MINUTE_MS, 2_200_000, 4),  # the second 5 minutes; minutes 6-59 stay empty
    (T0 + HOUR_MS, 2_100_000, 1),
    (T0 + WEEK_MS - 1, 4 * USD, 2),  # Sunday 23:59:59.999
    (T0 + WEEK_MS, 1 * USD, 5),  # the next Monday
]
ALL = (0, T0 + 3 * WEEK_MS)


def candle(start: int, size: int, *figures: str | int) -> Candle:
    """A candle from figures written by hand: open, high, low and close in dollars (decimal
    strings), units, quote volume in dollars, number of trades."""
    o, h, lo, c, units, quote, n = figures
    usd = [int(Decimal(str(x)) * USD) for x in (o, h, lo, c, quote)]
    return Candle(start, start + size, *usd[:4], int(units), usd[4], int(n))


#: The table spans more than the 7 days of 1-minute buckets kept by default: keep 8 here.
EIGHT_DAYS = {MINUTE_MS: 8 * 24 * 60, HOUR_MS: 400 * 24, DAY_MS: 3_660}


def filled(retention: Mapping[int, int] = EIGHT_DAYS) -> Candles:
    candles = Candles(retention)
    for ts_ms, price, units in TRADES:
        candles.add(ts_ms, price, units)
    return candles


EXPECTED = {
    "1m": [
        candle(T0 - MINUTE_MS, MINUTE_MS, "9", "9", "9", "9", 1, "9", 1),
        candle(T0, MINUTE_MS, "2", "2.5", "2", "2.5", 3, "7", 2),
        candle(T0 + MINUTE_MS, MINUTE_MS, "1.5", "1.5", "1.5", "1.5", 3, "4.5", 1),
        candle(T0 + 4 * MINUTE_MS, MINUTE_MS, "3", "3", "3", "3", 1, "3", 1),
        candle(T0 + 5 * MINUTE_MS, MINUTE_MS, "2.2", "2.2", "2.2", "2.2", 4, "8.8", 1),
        candle(T0 + HOUR_MS, MINUTE_MS, "2.1", "2.1", "2.1", "2.1", 1, "2.1", 1),
        candle(T0 + WEEK_MS - MINUTE_MS, MINUTE_MS, "4", "4", "4", "4", 2, "8", 1),
        candle(T0 + WEEK_MS, MINUTE_MS, "1", "1", "1", "1", 5, "5", 1),
    ],
    "5m": [
        candle(T0 - 5 * MINUTE_MS, 5 * MINUTE_MS, "9", "9", "9", "9", 1, "9", 1),
        candle(T0, 5 * MINUTE_MS, "2", "3", "1.5", "3", 7, "14.5", 4),
        candle(T0 + 5 * MINUTE_MS, 5 * MINUTE_MS, "2.2", "2.2", "2.2", "2.2", 4, "8.8", 1),
        candle(T0 + HOUR_MS, 5 * MINUTE_MS, "2.1", "2.1", "2.1", "2.1", 1, "2.1", 1),
        candle(T0 + WEEK_MS - 5 * MINUTE_MS, 5 * MINUTE_MS, "4", "4", "4", "4", 2, "8", 1),
        candle(T0 + WEEK_MS, 5 * MINUTE_MS, "1", "1", "1", "1", 5, "5", 1),
    ],
    "1h": [
        candle(T0 - HOUR_MS, HOUR_MS, "9", "9", "9", "9", 1, "9", 1),
        candle(T0, HOUR_MS, "2", "3", "1.5", "2.2", 11, "23.3", 5),
        candle(T0 + HOUR_MS, HOUR_MS, "2.1", "2.1", "2.1", "2.1", 1, "2.1", 1),
        candle(T0 + WEEK_MS - HOUR_MS, HOUR_MS, "4", "4", "4", "4", 2, "8", 1),
        candle(T0 + WEEK_MS, HOUR_MS, "1", "1", "1", "1", 5, "5", 1),
    ],
    "4h": [
        candle(T0 - 4 * HOUR_MS, 4 * HOUR_MS, "9", "9", "9", "9", 1, "9", 1),
        candle(T0, 4 * HOUR_MS, "2", "3", "1.5", "2.1", 12, "25.4", 6),
        candle(T0 + WEEK_MS - 4 * HOUR_MS, 4 * HOUR_MS, "4", "4", "4", "4", 2, "8", 1),
        candle(T0 + WEEK_MS, 4 * HOUR_MS, "1", "1", "1", "1", 5, "5", 1),
    ],
    "1d": [
        candle(T0 - DAY_MS, DAY_MS, "9", "9", "9", "9", 1, "9", 1),
        candle(T0, DAY_MS, "2", "3", "1.5", "2.1", 12, "25.4", 6),
        candle(T0 + WEEK_MS - DAY_MS, DAY_MS, "4", "4", "4", "4", 2, "8", 1),
        candle(T0 + WEEK_MS, DAY_MS, "1", "1", "1", "1", 5, "5", 1),
    ],
    "1w": [
        candle(T0 - WEEK_MS, WEEK_MS, "9", "9", "9", "9", 1, "9", 1),
        candle(T0, WEEK_MS, "2", "4", "1.5", "4", 14, "33.4", 7),
        candle(T0 + WEEK_MS, WEEK_MS, "1", "1", "1", "1", 5, "5", 1),
    ],
}


@pytest.mark.parametrize("resolution", sorted(EXPECTED))
def test_candles_from_the_table(resolution: str) -> None:
    assert filled().query(resolution, *ALL) == EXPECTED[resolution]


def test_fifteen_minutes_merge_the_first_quarter_hour() -> None:
    got = filled().query("15m", T0, T0 + 15 * MINUTE_MS - 1)
    assert got == [candle(T0, 15 * MINUTE_MS, "2", "3", "1.5", "2.2", 11, "23.3", 5)]


def test_weeks_start_on_monday_utc() -> None:
    for day in range(14):
        start = period_start_ms(T0 + day * DAY_MS + 12 * HOUR_MS, WEEK_MS)
        monday = datetime.fromtimestamp(start // 1_000, tz=UTC)
        assert (monday.weekday(), monday.hour, monday.minute) == (0, 0, 0)
        assert start == T0 + (day // 7) * WEEK_MS
    # Before the first Monday after the epoch (a Thursday): Monday 1969-12-29.
    assert period_start_ms(0, WEEK_MS) == -3 * DAY_MS


def test_a_range_selects_whole_periods_that_overlap_it() -> None:
    candles = filled()
    # One instant inside the first 5 minutes: the whole 5-minute candle, all four trades.
    assert candles.query("5m", T0 + MINUTE_MS, T0 + MINUTE_MS) == [EXPECTED["5m"][1]]
    # `to` exactly at a period's start includes that period; `from` at a period's end not.
    assert candles.query("1m", T0, T0 + MINUTE_MS) == EXPECTED["1m"][1:3]
    assert candles.query("1m", T0 - 1, T0) == EXPECTED["1m"][0:2]
    # An empty stretch (minutes 6-59) has no candles at all.
    assert candles.query("1m", T0 + 6 * MINUTE_MS, T0 + HOUR_MS - 1) == []
    assert Candles().query("1h", *ALL) == []


def test_by_default_minutes_are_kept_seven_days_and_coarser_tiers_longer() -> None:
    candles = filled(DEFAULT_RETENTION)
    # The newest trade is at T0 + 7 days: minutes from T0 + 1 minute on are kept.
    assert candles.retained_from_ms("1m") == T0 + MINUTE_MS
    with pytest.raises(NotRetained):
        candles.query("1m", T0, T0 + WEEK_MS)
    assert candles.query("1m", T0 + MINUTE_MS, T0 + WEEK_MS) == EXPECTED["1m"][2:]
    for resolution in ("1h", "4h", "1d", "1w"):
        assert candles.retained_from_ms(resolution) is None
        assert candles.query(resolution, *ALL) == EXPECTED[resolution]


def test_a_range_older_than_a_tier_keeps_is_refused_not_truncated() -> None:
    candles = Candles({MINUTE_MS: 3, HOUR_MS: 2, DAY_MS: 2})
    for minute in range(4):
        candles.add(T0 + minute * MINUTE_MS, (minute + 1) * USD, 1)
    # Three minutes are kept: the first one is gone, so a range reaching it is refused.
    assert candles.retained_from_ms("1m") == T0 + MINUTE_MS
    with pytest.raises(NotRetained) as refused:
        candles.query("1m", T0, T0 + HOUR_MS)
    assert refused.value.retained_from_ms == T0 + MINUTE_MS
    kept = candles.query("1m", T0 + MINUTE_MS, T0 + HOUR_MS)
    assert [c.open_usd_micros for c in kept] == [2 * USD, 3 * USD, 4 * USD]
    # The partial 5-minute period is refused too; the first whole one is after it.
    assert candles.retained_from_ms("5m") == T0 + 5 * MINUTE_MS
    with pytest.raises(NotRetained):
        candles.query("5m", T0 + 4 * MINUTE_MS, T0 + HOUR_MS)
    # The hour tier still holds all four trades.
    assert candles.query("1h", T0, T0) == [candle(T0, HOUR_MS, "1", "4", "1", "4", 4, "10", 4)]
    # Two hours later, the hour tier keeps 2 hours: T0's hour is gone, the day tier has it.
    candles.add(T0 + 2 * HOUR_MS, 5 * USD, 1)
    assert candles.retained_from_ms("1h") == T0 + HOUR_MS
    assert candles.query("1d", T0, T0) == [candle(T0, DAY_MS, "1", "5", "1", "5", 5, "15", 5)]


def _reference(trades: list[tuple[int, int, int]], resolution_ms: int) -> list[Candle]:
    """Candles straight from the trades, one period at a time."""
    periods: dict[int, list[tuple[int, int, int]]] = {}
    for trade in trades:
        periods.setdefault(period_start_ms(trade[0], resolution_ms), []).append(trade)
    return [
        Candle(
            start,
            start + resolution_ms,
            group[0][1],
            max(p for _, p, _ in group),
            min(p for _, p, _ in group),
            group[-1][1],
            sum(u for _, _, u in group),
            sum(p * u for _, p, u in group),
            len(group),
        )
        for start, group in sorted(periods.items())
    ]


def test_every_resolution_agrees_with_a_reference_built_from_the_trades() -> None:
    rng = random.Random(7)
    ts = T0 - 3 * DAY_MS
    trades = []
    for _ in range(250):
        ts += rng.choice((0, 1, 999, 30_000, MINUTE_MS, 7 * MINUTE_MS, HOUR_MS, 3 * HOUR_MS))
        trades.append((ts, rng.randrange(1, 500) * 1_000, rng.randrange(1, 20)))
    assert T0 < ts < T0 + 4 * DAY_MS  # across a week's start, within every tier's retention
    candles = Candles()
    for trade in trades:
        candles.add(*trade)
    for resolution, resolution_ms in RESOLUTIONS_MS.items():
        assert candles.query(resolution, 0, ts) == _reference(trades, resolution_ms), resolution


def test_the_read_model_keeps_candles_per_market() -> None:
    model = MarketData([InstrumentId("a"), InstrumentId("b")], candle_retention=EIGHT_DAYS)
    for trade_id, (ts_ms, price, units) in enumerate(TRADES, start=1):
        trade = Trade(
            trade_id, ts_ms, TradeId(trade_id), InstrumentId("a"), trade_id, price, units,
            AccountId("buyer"), AccountId("seller"), OrderId(1), OrderId(2), "buy", 0, 0,
        )  # fmt: skip
        model.apply_outcome(trade_id, ts_ms, [trade])
    assert model.candles("a", "1w", *ALL) == EXPECTED["1w"]
    assert model.candles("b", "1w", *ALL) == []
    assert model.candles("never-traded", "1w", *ALL) == []


def test_a_trade_earlier_than_the_last_still_lands_in_its_own_period() -> None:
    # The sequencer never lets time go back; were it to, the candle must still be right.
    candles = Candles(EIGHT_DAYS)
    candles.add(T0 + 2 * MINUTE_MS, 3 * USD, 1)
    candles.add(T0, 1 * USD, 2)
    candles.add(T0 + 2 * MINUTE_MS + 1, 4 * USD, 1)
    assert candles.query("1m", T0, T0 + HOUR_MS) == [
        candle(T0, MINUTE_MS, "1", "1", "1", "1", 2, "2", 1),
        candle(T0 + 2 * MINUTE_MS, MINUTE_MS, "3", "4", "3", "4", 2, "7", 2),
    ]

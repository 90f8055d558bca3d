"""OHLCV candles of one market, built from its committed trades, bounded in memory.

Resolutions: `1m 5m 15m 1h 4h 1d 1w`. A period is half-open, `[period_start, period_end)`,
aligned to UTC: minutes and hours on the clock, days at 00:00 UTC, and weeks on **Monday**
00:00 UTC (ISO weeks). A trade at exactly a period's end belongs to the next period. Candles
are sparse: a period with no trade has no candle (no filled-forward candles).

A candle: open = price of the first trade in the period (in command order), close = the
last, high/low the extremes, volume = units traded, quote volume = sum of price × units in
micro-USD, and the number of trades. All integers.

Storage: three tiers of buckets, each bucket the exact candle of its period:

    tier  serves          kept (buckets per market)
    1m    1m, 5m, 15m     7 days      (10,080)
    1h    1h, 4h          400 days    ( 9,600)
    1d    1d, 1w          3,660 days  ( 3,660: ten years)

A resolution is built from the coarsest tier that divides it, by merging consecutive buckets
(merging candles is exact: first open, max high, min low, last close, sums), so every tier
gives the same answer for the periods it holds. Retention counts back from the newest trade's
bucket, not from the wall clock, so the tiers are a function of the trade history alone: the
read model rebuilds them from the store on start and answers the same after a restart.
A query whose first period starts before what a tier still holds raises `NotRetained` rather
than answering with a silently truncated range.

Memory: at most 23,340 buckets per market, a few MB.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from typing import NamedTuple

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
#: 1970-01-01 was a Thursday; the first Monday 00:00 UTC after the epoch is 4 days later.
WEEK_OFFSET_MS = 4 * DAY_MS

RESOLUTIONS_MS: Mapping[str, int] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "1h": HOUR_MS,
    "4h": 4 * HOUR_MS,
    "1d": DAY_MS,
    "1w": WEEK_MS,
}

#: Tier bucket size (ms) -> how many buckets of it are kept per market.
DEFAULT_RETENTION: Mapping[int, int] = {
    MINUTE_MS: 7 * 24 * 60,
    HOUR_MS: 400 * 24,
    DAY_MS: 3_660,
}

#: Which tier each resolution is built from (the coarsest tier that divides it).
_SOURCE_TIER_MS: Mapping[str, int] = {
    "1m": MINUTE_MS,
    "5m": MINUTE_MS,
    "15m": MINUTE_MS,
    "1h": HOUR_MS,
    "4h": HOUR_MS,
    "1d": DAY_MS,
    "1w": DAY_MS,
}


def period_start_ms(ts_ms: int, resolution_ms: int) -> int:
    """The start of the UTC-aligned period of `resolution_ms` holding `ts_ms`."""
    offset = WEEK_OFFSET_MS if resolution_ms == WEEK_MS else 0
    return (ts_ms - offset) // resolution_ms * resolution_ms + offset


class Candle(NamedTuple):
    """One period's trading; prices in micro-USD per unit."""

    period_start_ms: int
    period_end_ms: int
    open_usd_micros: int
    high_usd_micros: int
    low_usd_micros: int
    close_usd_micros: int
    volume_units: int
    quote_volume_usd_micros: int
    num_trades: int


class NotRetained(Exception):
    """The asked range starts before the oldest period this resolution still holds."""

    def __init__(self, resolution: str, retained_from_ms: int) -> None:
        super().__init__(resolution, retained_from_ms)
        self.resolution = resolution
        self.retained_from_ms = retained_from_ms


class _Bucket:
    __slots__ = ("close", "high", "low", "num_trades", "open", "quote", "start_ms", "units")

    def __init__(self, start_ms: int, price_usd_micros: int) -> None:
        self.start_ms = start_ms
        self.open = self.high = self.low = self.close = price_usd_micros
        self.units = 0
        self.quote = 0
        self.num_trades = 0

    def add(self, price_usd_micros: int, quantity_units: int) -> None:
        self.high = max(self.high, price_usd_micros)
        self.low = min(self.low, price_usd_micros)
        self.close = price_usd_micros
        self.units += quantity_units
        self.quote += price_usd_micros * quantity_units
        self.num_trades += 1


def _start(bucket: _Bucket) -> int:
    return bucket.start_ms


class _Tier:
    """Buckets of one size, oldest first, at most `keep` of them (see the module docstring)."""

    __slots__ = ("buckets", "keep", "retained_from_ms", "size_ms")

    def __init__(self, size_ms: int, keep: int) -> None:
        assert size_ms > 0 and keep > 0
        self.size_ms = size_ms
        self.keep = keep
        self.buckets: list[_Bucket] = []
        #: Every trade at or after this time is in the tier (None: nothing evicted yet).
        self.retained_from_ms: int | None = None

    def add(self, ts_ms: int, price_usd_micros: int, quantity_units: int) -> None:
        start = period_start_ms(ts_ms, self.size_ms)
        buckets = self.buckets
        if buckets and buckets[-1].start_ms == start:
            bucket = buckets[-1]
        elif not buckets or buckets[-1].start_ms < start:
            bucket = _Bucket(start, price_usd_micros)
            buckets.append(bucket)
            horizon = start - (self.keep - 1) * self.size_ms
            if buckets[0].start_ms < horizon:
                del buckets[: bisect_left(buckets, horizon, key=_start)]
                self.retained_from_ms = horizon
        else:
            # Timestamps never go back (the sequencer makes them non-decreasing); were one to,
            # it still lands in its own period, unless that period has been evicted.
            if self.retained_from_ms is not None and start < self.retained_from_ms:
                return
            at = bisect_left(buckets, start, key=_start)
            if at == len(buckets) or buckets[at].start_ms != start:
                buckets.insert(at, _Bucket(start, price_usd_micros))
            bucket = buckets[at]
        bucket.add(price_usd_micros, quantity_units)


class Candles:
    """The candles of one market at every resolution (see the module docstring)."""

    __slots__ = ("_tiers",)

    def __init__(self, retention: Mapping[int, int] = DEFAULT_RETENTION) -> None:
        self._tiers = {size: _Tier(size, keep) for size, keep in retention.items()}
        assert set(self._tiers) == set(_SOURCE_TIER_MS.values())

    def add(self, ts_ms: int, price_usd_micros: int, quantity_units: int) -> None:
        for tier in self._tiers.values():
            tier.add(ts_ms, price_usd_micros, quantity_units)

    def retained_from_ms(self, resolution: str) -> int | None:
        """The start of the oldest whole period of `resolution` still held (None: all are)."""
        resolution_ms = RESOLUTIONS_MS[resolution]
        tier_from = self._tiers[_SOURCE_TIER_MS[resolution]].retained_from_ms
        if tier_from is None:
            return None
        start = period_start_ms(tier_from, resolution_ms)
        return start if start == tier_from else start + resolution_ms

    def query(self, resolution: str, from_ms: int, to_ms: int) -> list[Candle]:
        """Candles of periods overlapping `[from_ms, to_ms]`, oldest first; whole periods.

        Raises `KeyError` for an unknown resolution and `NotRetained` when the first period
        starts before `retained_from_ms(resolution)`.
        """
        resolution_ms = RESOLUTIONS_MS[resolution]
        tier = self._tiers[_SOURCE_TIER_MS[resolution]]
        first = period_start_ms(from_ms, resolution_ms)
        retained_from = self.retained_from_ms(resolution)
        if retained_from is not None and first < retained_from:
            raise NotRetained(resolution, retained_from)
        end = period_start_ms(to_ms, resolution_ms) + resolution_ms
        buckets = tier.buckets
        lo = bisect_left(buckets, first, key=_start)
        hi = bisect_left(buckets, end, key=_start)
        candles: list[Candle] = []
        current: _Bucket | None = None
        for bucket in buckets[lo:hi]:
            start = period_start_ms(bucket.start_ms, resolution_ms)
            if current is None or current.start_ms != start:
                if current is not None:
                    candles.append(_candle(current, resolution_ms))
                current = _Bucket(start, bucket.open)
            current.high = max(current.high, bucket.high)
            current.low = min(current.low, bucket.low)
            current.close = bucket.close
            current.units += bucket.units
            current.quote += bucket.quote
            current.num_trades += bucket.num_trades
        if current is not None:
            candles.append(_candle(current, resolution_ms))
        return candles


def _candle(bucket: _Bucket, resolution_ms: int) -> Candle:
    return Candle(
        bucket.start_ms,
        bucket.start_ms + resolution_ms,
        bucket.open,
        bucket.high,
        bucket.low,
        bucket.close,
        bucket.units,
        bucket.quote,
        bucket.num_trades,
    )

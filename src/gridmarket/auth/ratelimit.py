"""Token buckets per signing key, and per signing key and market for order placement.

A `Rate` is a bucket of `capacity` tokens that refills `refill_tokens` tokens every
`period_ms`. Each request takes one token from every bucket it is charged to, all or none: a
refused request takes nothing, so retrying after `retry_after_ms` succeeds.

    limiter = RateLimiter(RateLimiterConfig(...), clock=lambda: now_ms)
    decision = limiter.admit("fingerprint", market_id=None)   # every signed request
    decision = limiter.admit("fingerprint", market_id="m")    # an order placement in market m
    decision = limiter.order_budget("fingerprint", "m")       # what is left, charging nothing

The arithmetic is exact integers: a bucket holds *units*, one token being `period_ms` units,
and every elapsed millisecond adds `refill_tokens` units, so no rounding ever drifts. Time is
the injected `clock` (unix milliseconds; tests pass a fake one). A clock that steps back
refills nothing; one that steps forward refills, at most to capacity.

Memory is bounded: each bucket set keeps at most `max_keys` buckets, least recently used
first out. A full bucket is the same as no bucket, so evicting an idle key loses nothing;
evicting a busy one (only with more than `max_keys` keys busy at once) grants it a fresh
bucket, the price of a hard memory bound.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import NamedTuple

DEFAULT_MAX_KEYS = 100_000


class Rate(NamedTuple):
    """`capacity` tokens, refilled at `refill_tokens` per `period_ms`."""

    capacity: int
    refill_tokens: int
    period_ms: int


class Decision(NamedTuple):
    """One bucket's answer: what the `x-ratelimit-*` headers say."""

    allowed: bool
    limit: int  # the bucket's capacity
    remaining: int  # whole tokens left after this request
    reset_ms: int  # unix ms when the bucket is full again
    retry_after_ms: int  # 0 when allowed; else how long until one token is back


class RateLimiterConfig(NamedTuple):
    requests: Rate  # every signed request, per signing key
    order_burst: Rate  # order placements, per signing key and market: burst and per second
    order_window: Rate  # ... and per window (a minute)
    max_keys: int = DEFAULT_MAX_KEYS


class _Bucket:
    __slots__ = ("at_ms", "units")

    def __init__(self, units: int, at_ms: int) -> None:
        self.units = units
        self.at_ms = at_ms


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


class BucketSet:
    """Buckets of one `Rate`, one per key, at most `max_keys` of them (LRU)."""

    def __init__(self, rate: Rate, max_keys: int) -> None:
        assert rate.capacity > 0 and rate.refill_tokens > 0 and rate.period_ms > 0, rate
        assert max_keys > 0
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    @property
    def full_units(self) -> int:
        return self.rate.capacity * self.rate.period_ms

    def units(self, key: Hashable, now_ms: int) -> int:
        """The key's units at `now_ms`, refilled; a key without a bucket is full."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return self.full_units
        elapsed_ms = max(0, now_ms - bucket.at_ms)
        return min(self.full_units, bucket.units + elapsed_ms * self.rate.refill_tokens)

    def decision(self, units: int, now_ms: int, allowed: bool) -> Decision:
        rate = self.rate
        missing = max(0, rate.period_ms - units)
        return Decision(
            allowed=allowed,
            limit=rate.capacity,
            remaining=units // rate.period_ms,
            reset_ms=now_ms + _ceil_div(self.full_units - units, rate.refill_tokens),
            retry_after_ms=0 if allowed else _ceil_div(missing, rate.refill_tokens),
        )

    def touch(self, key: Hashable) -> None:
        """Mark the key used (a refused key is busy: evicting it would refill it)."""
        if key in self._buckets:
            self._buckets.move_to_end(key)

    def store(self, key: Hashable, units: int, now_ms: int) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
            self._buckets[key] = _Bucket(units, now_ms)
            return
        bucket.units = units
        bucket.at_ms = max(bucket.at_ms, now_ms)
        self._buckets.move_to_end(key)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class RateLimiter:
    """The per-key request limit and the per-key-and-market order limits, together."""

    def __init__(self, config: RateLimiterConfig, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self._clock = clock
        self.requests = BucketSet(config.requests, config.max_keys)
        self.order_burst = BucketSet(config.order_burst, config.max_keys)
        self.order_window = BucketSet(config.order_window, config.max_keys)

    def admit(self, key: str, market_id: str | None = None) -> Decision:
        """Charge one request to `key` (and one order in `market_id`, if given), or refuse.

        Allowed: the decision of the tightest bucket charged (fewest tokens left). Refused:
        that of the bucket that must wait longest; nothing is charged.
        """
        now_ms = self._clock()
        charged: list[tuple[BucketSet, Hashable]] = [(self.requests, key)]
        if market_id is not None:
            charged += [(self.order_burst, (key, market_id)), (self.order_window, (key, market_id))]
        levels = [(buckets, name, buckets.units(name, now_ms)) for buckets, name in charged]
        short = [
            buckets.decision(units, now_ms, allowed=False)
            for buckets, _, units in levels
            if units < buckets.rate.period_ms
        ]
        if short:
            for buckets, name in charged:
                buckets.touch(name)
            return max(short, key=lambda d: d.retry_after_ms)
        decisions = []
        for buckets, name, units in levels:
            left = units - buckets.rate.period_ms
            buckets.store(name, left, now_ms)
            decisions.append(buckets.decision(left, now_ms, allowed=True))
        return min(decisions, key=lambda d: (d.remaining, -d.reset_ms))

    def order_budget(self, key: str, market_id: str) -> Decision:
        """How many orders `key` may place in `market_id` now, charging and storing nothing."""
        now_ms = self._clock()
        decisions = []
        for buckets in (self.order_burst, self.order_window):
            units = buckets.units((key, market_id), now_ms)
            decisions.append(buckets.decision(units, now_ms, units >= buckets.rate.period_ms))
        refused = [d for d in decisions if not d.allowed]
        if refused:
            return max(refused, key=lambda d: d.retry_after_ms)
        return min(decisions, key=lambda d: (d.remaining, -d.reset_ms))

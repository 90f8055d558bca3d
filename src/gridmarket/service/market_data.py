"""The public market-data read model: recent trades, 24h statistics and candles per market.

Fed only by committed outcomes, so it never shows a trade that could still be lost:

- on start, it subscribes to the sequencer's feed *first*, notes `committed_seq` (no await in
  between, so no batch can be acknowledged in the gap), then backfills the trades of every
  command up to that seq from the store (`Store.load_events`, in a thread; applied on the
  event loop). The feed then carries everything after it; outcomes at or below the last
  applied seq are skipped. That makes it correct across restarts and with no gap or double.
- a subscriber that falls behind is dropped by the feed (`SubscriberDropped`); the model then
  resubscribes and catches up from the store the same way.

Bounds (STYLE: a limit on everything): the last `max_trades` trades per market (1,000 by
default; older ones are in the store), and 24h statistics kept as one bucket per minute,
at most 1,440 per market. The 24h window is therefore "the current minute and the 1,439
before it": up to 59 s longer than exactly 24 h, never shorter. OHLCV candles at every
resolution are kept as `service.candles` says (1m buckets for 7 days, 1h for 400 days, 1d
for ten years); since the model is rebuilt from the store on start, so are they.

Everything is read and written on the event loop only, so a request sees whole outcomes.
Reads call `caught_up(committed_seq)` first, so a client that was just acknowledged sees its
own trades (read-your-writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import NamedTuple

from gridmarket.adapters.store import Store
from gridmarket.core.events import Trade
from gridmarket.core.ids import InstrumentId
from gridmarket.service.candles import DEFAULT_RETENTION, Candle, Candles
from gridmarket.service.errors import SubscriberDropped
from gridmarket.service.feed import Subscription
from gridmarket.service.market import MarketService
from gridmarket.service.sequencer import Clock, system_clock_ms

log = logging.getLogger(__name__)

DEFAULT_MAX_TRADES = 1_000
MINUTE_MS = 60_000
WINDOW_MINUTES = 24 * 60
#: How long a read waits for the feed to deliver what is already acknowledged.
CATCH_UP_TIMEOUT_S = 1.0


class _Minute:
    """Trades of one market in one wall-clock minute."""

    __slots__ = (
        "close",
        "high",
        "low",
        "minute",
        "num_trades",
        "open",
        "quote_usd_micros",
        "units",
    )

    def __init__(self, minute: int, price_usd_micros: int) -> None:
        self.minute = minute
        self.open = self.high = self.low = self.close = price_usd_micros
        self.units = 0
        self.quote_usd_micros = 0
        self.num_trades = 0

    def add(self, price_usd_micros: int, quantity_units: int) -> None:
        self.high = max(self.high, price_usd_micros)
        self.low = min(self.low, price_usd_micros)
        self.close = price_usd_micros
        self.units += quantity_units
        self.quote_usd_micros += price_usd_micros * quantity_units
        self.num_trades += 1


class Stats24h(NamedTuple):
    """One market's trading over the window; prices are None when nothing traded in it."""

    period_start_ms: int
    period_end_ms: int
    open_usd_micros: int | None
    high_usd_micros: int | None
    low_usd_micros: int | None
    close_usd_micros: int | None
    volume_units: int
    quote_volume_usd_micros: int
    num_trades: int


class _Tape:
    __slots__ = ("candles", "minutes", "trades")

    def __init__(self, max_trades: int, candle_retention: Mapping[int, int]) -> None:
        self.trades: deque[Trade] = deque(maxlen=max_trades)
        self.minutes: deque[_Minute] = deque()
        self.candles = Candles(candle_retention)


class MarketData:
    """Recent public trades and 24h statistics per market (see the module docstring)."""

    def __init__(
        self,
        instrument_ids: Iterable[InstrumentId] = (),
        *,
        clock: Clock = system_clock_ms,
        max_trades: int = DEFAULT_MAX_TRADES,
        candle_retention: Mapping[int, int] = DEFAULT_RETENTION,
    ) -> None:
        assert max_trades > 0
        self._clock = clock
        self._max_trades = max_trades
        self._candle_retention = candle_retention
        self._tapes: dict[str, _Tape] = {i: self._new_tape() for i in instrument_ids}
        #: Every trade of every command up to this seq has been applied.
        self.applied_seq = 0
        #: The timestamp of the first command ever (None while the log is empty).
        self.first_ts_ms: int | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def _new_tape(self) -> _Tape:
        return _Tape(self._max_trades, self._candle_retention)

    # -- feeding ------------------------------------------------------------------------------

    def apply_trade(self, trade: Trade) -> None:
        tape = self._tapes.get(trade.instrument_id)
        if tape is None:
            tape = self._tapes[trade.instrument_id] = self._new_tape()
        tape.trades.append(trade)
        tape.candles.add(trade.ts_ms, trade.price_usd_micros, trade.quantity_units)
        minute = trade.ts_ms // MINUTE_MS
        minutes = tape.minutes
        if minutes and minutes[-1].minute == minute:
            bucket = minutes[-1]
        else:
            bucket = _Minute(minute, trade.price_usd_micros)
            minutes.append(bucket)
            while minutes[0].minute <= minute - WINDOW_MINUTES:
                minutes.popleft()
        bucket.add(trade.price_usd_micros, trade.quantity_units)

    def apply_outcome(self, seq: int, ts_ms: int, events: Iterable[object]) -> None:
        """Apply one committed command's events (ignored if already applied)."""
        if seq <= self.applied_seq:
            return
        if self.first_ts_ms is None:
            self.first_ts_ms = ts_ms
        for event in events:
            if type(event) is Trade:
                self.apply_trade(event)
        self._advance(seq)

    def _advance(self, seq: int) -> None:
        self.applied_seq = seq
        if self._waiters:
            ready = [w for w in self._waiters if w[0] <= seq]
            self._waiters = [w for w in self._waiters if w[0] > seq]
            for _, future in ready:
                if not future.done():
                    future.set_result(None)

    async def caught_up(self, seq: int, timeout_s: float = CATCH_UP_TIMEOUT_S) -> bool:
        """Wait until every outcome up to `seq` is applied (read-your-writes); False on timeout.

        An acknowledged command's submitter is answered before the feed delivers its outcome
        to this model, so a read right after an acknowledgement waits here for a moment.
        """
        if self.applied_seq >= seq:
            return True
        future = asyncio.get_running_loop().create_future()
        entry = (seq, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    # -- reading ------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return self._clock()

    def recent_trades(self, instrument_id: str) -> list[Trade]:
        """The retained trades of one market, newest first."""
        tape = self._tapes.get(instrument_id)
        return [] if tape is None else list(reversed(tape.trades))

    def last_trade(self, instrument_id: str) -> Trade | None:
        tape = self._tapes.get(instrument_id)
        return tape.trades[-1] if tape is not None and tape.trades else None

    def stats(self, instrument_id: str, now_ms: int) -> Stats24h:
        """The window ending at `now_ms`: this minute and the 1,439 before it."""
        first_minute = now_ms // MINUTE_MS - WINDOW_MINUTES + 1
        tape = self._tapes.get(instrument_id)
        buckets = [] if tape is None else [m for m in tape.minutes if m.minute >= first_minute]
        start_ms = first_minute * MINUTE_MS
        if not buckets:
            return Stats24h(start_ms, now_ms, None, None, None, None, 0, 0, 0)
        return Stats24h(
            start_ms,
            now_ms,
            buckets[0].open,
            max(m.high for m in buckets),
            min(m.low for m in buckets),
            buckets[-1].close,
            sum(m.units for m in buckets),
            sum(m.quote_usd_micros for m in buckets),
            sum(m.num_trades for m in buckets),
        )

    def candles(
        self, instrument_id: str, resolution: str, from_ms: int, to_ms: int
    ) -> list[Candle]:
        """Candles of periods overlapping `[from_ms, to_ms]`, oldest first (`Candles.query`)."""
        tape = self._tapes.get(instrument_id)
        if tape is None:  # never traded: no candles (and a read adds no state)
            return Candles(self._candle_retention).query(resolution, from_ms, to_ms)
        return tape.candles.query(resolution, from_ms, to_ms)

    def candles_retained_from_ms(self, instrument_id: str, resolution: str) -> int | None:
        """The start of the oldest period of `resolution` still held (None: every one is)."""
        tape = self._tapes.get(instrument_id)
        return None if tape is None else tape.candles.retained_from_ms(resolution)

    # -- running against a market service -----------------------------------------------------

    @contextlib.asynccontextmanager
    async def following(self, market: MarketService) -> AsyncIterator[MarketData]:
        """Backfill from the store, then follow the feed until the context exits."""
        subscription = await self._catch_up(market)
        task = asyncio.create_task(self._follow(market, subscription), name="market-data")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _catch_up(self, market: MarketService) -> Subscription:
        # Subscribe, then read committed_seq, with no await between: every outcome after
        # `upto` reaches the subscription, every one up to it is in the store.
        subscription = market.subscribe()
        upto = market.sequencer.committed_seq
        after = self.applied_seq
        if upto > after:
            first_ts_ms, trades = await asyncio.to_thread(_load_trades, market.store, after, upto)
            if self.first_ts_ms is None:
                self.first_ts_ms = first_ts_ms
            for trade in trades:
                self.apply_trade(trade)
            self._advance(upto)
        return subscription

    async def _follow(self, market: MarketService, subscription: Subscription) -> None:
        while True:
            try:
                async with subscription:
                    async for outcome in subscription:
                        self.apply_outcome(outcome.seq, outcome.ts_ms, outcome.events)
                return  # the feed closed: the market is stopping
            except SubscriberDropped:
                log.warning("market data fell behind the feed; catching up from the store")
                subscription = await self._catch_up(market)
            except Exception:
                log.exception("market data stopped following the feed")
                raise


def _load_trades(store: Store, after_seq: int, upto_seq: int) -> tuple[int | None, list[Trade]]:
    """(timestamp of the first event read, trades of commands in (after_seq, upto_seq])."""
    first_ts_ms: int | None = None
    trades: list[Trade] = []
    for _, event in store.load_events(after_seq):
        if event.seq > upto_seq:
            break  # committed after the subscription began: the feed carries it
        if first_ts_ms is None:
            first_ts_ms = event.ts_ms
        if type(event) is Trade:
            trades.append(event)
    return first_ts_ms, trades

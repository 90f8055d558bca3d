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

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from gridmarket.core.events import Trade
from gridmarket.core.ids import InstrumentId
from gridmarket.service.candles import DEFAULT_RETENTION, Candle, Candles
from gridmarket.service.followed import FollowedModel
from gridmarket.service.sequencer import Clock, system_clock_ms

log = logging.getLogger(__name__)

DEFAULT_MAX_TRADES = 1_000
MINUTE_MS = 60_000
WINDOW_MINUTES = 24 * 60


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


class MarketData(FollowedModel):
    """Recent public trades and 24h statistics per market (see the module docstring)."""

    EVENTS = (Trade,)
    LABEL = "market data"

    def __init__(
        self,
        instrument_ids: Iterable[InstrumentId] = (),
        *,
        clock: Clock = system_clock_ms,
        max_trades: int = DEFAULT_MAX_TRADES,
        candle_retention: Mapping[int, int] = DEFAULT_RETENTION,
    ) -> None:
        assert max_trades > 0
        super().__init__()
        self._clock = clock
        self._max_trades = max_trades
        self._candle_retention = candle_retention
        self._tapes: dict[str, _Tape] = {i: self._new_tape() for i in instrument_ids}
        #: The timestamp of the first command ever (None while the log is empty).
        self.first_ts_ms: int | None = None

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

    def apply_events(self, seq: int, ts_ms: int, events: Iterable[object]) -> None:
        if self.first_ts_ms is None:
            self.first_ts_ms = ts_ms
        for event in events:
            if type(event) is Trade:
                self.apply_trade(event)

    def on_backfill(self, first_ts_ms: int | None) -> None:
        if self.first_ts_ms is None:
            self.first_ts_ms = first_ts_ms

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

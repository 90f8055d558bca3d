"""The feed hub: follows the committed outcomes, keeps the feed model, fans events out.

One hub per process (`app.state.feed_hub`, run by the feed router's lifespan). It subscribes
to the sequencer feed and builds its `FeedModel` from the live state with no await in between,
then applies each committed outcome and pushes what changed to the connections subscribed to
it. Pushing never waits: each connection has a bounded outbox (`FeedLimits.
max_outbound_messages`); one that would overflow is closed with the reason `slow_consumer`
(its queued messages are dropped), so a slow client can never hold back the market or anyone
else. Book changes, trades and order changes of an outcome are pushed in one synchronous step,
so a book snapshot taken between two steps is followed by exactly the changes after it.

If the hub itself falls behind the feed (`SubscriberDropped`), it rebuilds its model from the
live state and closes every connection with the reason `resync` (they missed events; the
client reconnects and subscribes again). When the market stops, connections are closed with
`shutdown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.websockets import WebSocket

from gridmarket.api.feed import frames, payloads
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.service.book_feed import FeedModel, FeedUpdate
from gridmarket.service.errors import SubscriberDropped
from gridmarket.service.feed import Subscription
from gridmarket.service.market import MarketService
from gridmarket.service.market_data import MarketData
from gridmarket.service.sequencer import system_clock_ms

log = logging.getLogger(__name__)

TOPIC = "ws:trading"
USER_ORDERS = "user.orders"
MARKET_TRADES = "market.trades"
MARKET_TICKER = "market.ticker"
MARKET_BOOK = "market.book"
MARKET_STREAMS = (MARKET_TRADES, MARKET_TICKER, MARKET_BOOK)
STREAMS = (USER_ORDERS, *MARKET_STREAMS)
#: How long a ticker waits for the market-data model to hold the outcome (24h volume).
TICKER_CATCH_UP_S = 0.5

#: WebSocket close codes: policy violation (slow consumer, idle), try again later (full).
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
CLOSE_RESTART = 1012

Stream = tuple[str, str | None]


@dataclass(frozen=True)
class FeedLimits:
    max_connections: int = 1_000
    max_subscriptions: int = 10
    max_outbound_messages: int = 1_000
    max_frame_bytes: int = 16_384
    #: A connection that sends nothing (not even a heartbeat) for this long is closed.
    idle_timeout_s: float = 90.0
    #: A single frame that cannot be written in this long ends the connection.
    send_timeout_s: float = 10.0


class Connection:
    """One client: its channel state, its streams and its bounded outbox."""

    def __init__(self, hub: Hub, v2: bool) -> None:
        self.hub = hub
        self.v2 = v2
        self.joined = False
        self.join_ref: str | int | None = None
        self.account_id: AccountId | None = None
        self.streams: set[Stream] = set()
        self._outbox: deque[str] = deque()
        self._wake = asyncio.Event()
        #: (close code, reason) once the connection is being closed.
        self.closing: tuple[int, str] | None = None

    def send(self, text: str) -> None:
        """Queue one frame; close the connection instead if its outbox is full."""
        if self.closing is not None:
            return
        if len(self._outbox) >= self.hub.limits.max_outbound_messages:
            limit = self.hub.limits.max_outbound_messages
            self.close(CLOSE_POLICY, "slow_consumer", f"more than {limit} messages unread")
            return
        self._outbox.append(text)
        self._wake.set()

    def push(self, event: str, payload: dict[str, Any] | str) -> None:
        """A server event on the channel (payload as an object or already serialised)."""
        payload_json = payload if isinstance(payload, str) else frames.dumps(payload)
        self.send(frames.encode(self.v2, TOPIC, event, payload_json, None, self.join_ref))

    def close(self, code: int, reason: str, detail: str) -> None:
        """Drop what is queued, tell the client why (`phx_error`), then close the socket."""
        if self.closing is not None:
            return
        self.hub.forget(self)
        self._outbox.clear()
        body = frames.dumps({"reason": reason, "detail": detail})
        self._outbox.append(frames.encode(self.v2, TOPIC, "phx_error", body, None, self.join_ref))
        self.closing = (code, reason)
        self._wake.set()

    async def write(self, websocket: WebSocket) -> None:
        """Send queued frames until the connection is closed (run as the connection's writer)."""
        timeout = self.hub.limits.send_timeout_s
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while self._outbox:
                    await asyncio.wait_for(websocket.send_text(self._outbox.popleft()), timeout)
            except Exception:
                # A frame that cannot be written in time (or a socket already gone): this
                # connection hears nothing more; its reader ends at the latest on idling.
                self.hub.forget(self)
                self._outbox.clear()
                self.closing = self.closing or (CLOSE_POLICY, "send_failed")
                raise
            if self.closing is not None:
                code, reason = self.closing
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(code, reason), timeout)
                return


class Hub:
    def __init__(
        self, limits: FeedLimits, market_data: Callable[[], MarketData | None] = lambda: None
    ) -> None:
        self.limits = limits
        self._market_data = market_data
        self.model: FeedModel | None = None
        self.connections: set[Connection] = set()
        self._streams: dict[Stream, set[Connection]] = {}
        self._orders: dict[AccountId, set[Connection]] = {}

    # -- connections and streams ----------------------------------------------------------------

    def connect(self, v2: bool) -> Connection | None:
        """A new connection, or None when the process already has its maximum."""
        if len(self.connections) >= self.limits.max_connections:
            return None
        connection = Connection(self, v2)
        self.connections.add(connection)
        return connection

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        for stream in list(connection.streams):
            self.unsubscribe(connection, stream)

    def subscribe(self, connection: Connection, stream: Stream) -> None:
        """Add a stream and push its initial state (a book snapshot, the current ticker)."""
        name, market = stream
        connection.streams.add(stream)
        if name == USER_ORDERS:
            assert connection.account_id is not None
            self._orders.setdefault(connection.account_id, set()).add(connection)
            return
        self._streams.setdefault(stream, set()).add(connection)
        assert self.model is not None and market is not None
        if name == MARKET_BOOK:
            snapshot = self.model.snapshot(InstrumentId(market))
            connection.push("book_snapshot", payloads.book_snapshot(snapshot))
        elif name == MARKET_TICKER:
            connection.push("market_ticker", self._ticker(InstrumentId(market)))

    def unsubscribe(self, connection: Connection, stream: Stream) -> None:
        connection.streams.discard(stream)
        if stream[0] == USER_ORDERS:
            if connection.account_id is not None:
                listeners = self._orders.get(connection.account_id)
                if listeners is not None:
                    listeners.discard(connection)
                    if not listeners:
                        del self._orders[connection.account_id]
            return
        listeners = self._streams.get(stream)
        if listeners is not None:
            listeners.discard(connection)
            if not listeners:
                del self._streams[stream]

    def has_market(self, market_id: str) -> bool:
        return self.model is not None and market_id in self.model.books

    def close_all(self, code: int, reason: str, detail: str) -> None:
        for connection in list(self.connections):
            connection.close(code, reason, detail)

    # -- following the market -------------------------------------------------------------------

    def start(self, market: MarketService) -> Subscription:
        """Subscribe and build the model from the live state, with no await in between."""
        subscription = market.subscribe()
        self.model = FeedModel.from_state(market.sequencer.exchange.state)
        self.model.wants_orders = self._orders.__contains__
        return subscription

    async def follow(self, market: MarketService, subscription: Subscription) -> None:
        while True:
            try:
                async with subscription:
                    async for outcomes in subscription.batches():
                        for outcome in outcomes:
                            assert self.model is not None
                            update = self.model.apply(outcome)
                            if update is not None:
                                self._dispatch(update)
                                if update.tickers:
                                    await self._push_tickers(update)
                self.close_all(CLOSE_RESTART, "shutdown", "the market is stopping")
                return
            except SubscriberDropped:
                log.warning("the feed hub fell behind; rebuilding, connections must resubscribe")
                self.close_all(CLOSE_RESTART, "resync", "the feed restarted; subscribe again")
                subscription = self.start(market)

    def _listeners(self, name: str, market: str) -> list[Connection]:
        return list(self._streams.get((name, market), ()))

    def _dispatch(self, update: FeedUpdate) -> None:
        """Push an outcome's book changes, trades and order changes; never awaits."""
        for instrument_id, changes in update.levels.items():
            listeners = self._listeners(MARKET_BOOK, instrument_id)
            if listeners:
                body = frames.dumps(payloads.book_update(instrument_id, update.seq, changes))
                for connection in listeners:
                    connection.push("book_update", body)
        for trade in update.trades:
            listeners = self._listeners(MARKET_TRADES, trade.instrument_id)
            if listeners:
                body = frames.dumps(payloads.trade(trade))
                for connection in listeners:
                    connection.push("new_trade", body)
        for change in update.orders:
            listeners = list(self._orders.get(change.order.account_id, ()))
            if listeners:
                body = frames.dumps(payloads.order(change.order))
                for connection in listeners:
                    connection.push(change.kind, body)

    async def _push_tickers(self, update: FeedUpdate) -> None:
        wanted = [i for i in sorted(update.tickers) if self._streams.get((MARKET_TICKER, i))]
        if not wanted:
            return
        market_data = self._market_data()
        if market_data is not None:
            # The 24h volume comes from the market-data model, fed by its own subscription.
            await market_data.caught_up(update.seq, TICKER_CATCH_UP_S)
        for instrument_id in wanted:
            body = frames.dumps(self._ticker(instrument_id))
            for connection in self._listeners(MARKET_TICKER, instrument_id):
                connection.push("market_ticker", body)

    def _ticker(self, instrument_id: InstrumentId) -> dict[str, Any]:
        assert self.model is not None
        last, bid, ask = self.model.books[instrument_id].top()
        market_data = self._market_data()
        volume = 0
        now_ms = system_clock_ms()
        if market_data is not None:
            now_ms = market_data.now_ms()
            volume = market_data.stats(instrument_id, now_ms).volume_units
        return payloads.ticker(instrument_id, last, bid, ask, volume, now_ms)


@contextlib.asynccontextmanager
async def running_hub(app: FastAPI) -> AsyncIterator[None]:
    """The feed router's lifespan: runs the hub while the market service runs.

    Nested inside the app's lifespan (after `app.state.market` is set) and the market-data
    router's (its model gives the ticker's 24h volume). `app.state.feed_limits`, when a test
    sets it before start, replaces the default limits.
    """
    market = app.state.market
    if not isinstance(market, MarketService):
        app.state.feed_hub = None
        yield
        return
    limits = getattr(app.state, "feed_limits", None) or FeedLimits()
    hub = Hub(limits, lambda: getattr(app.state, "market_data", None))
    subscription = hub.start(market)
    task = asyncio.create_task(hub.follow(market, subscription), name="feed-hub")
    app.state.feed_hub = hub
    try:
        yield
    finally:
        app.state.feed_hub = None
        hub.close_all(CLOSE_RESTART, "shutdown", "the server is stopping")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

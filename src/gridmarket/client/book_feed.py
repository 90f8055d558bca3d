"""A local copy of one market's full-depth book, kept in sync from the live feed.

    feed = BookFeed("http://127.0.0.1:8000", "text-prime")
    for book in feed.books():          # an OrderBook after the snapshot and after each update
        print(book.best_bid, book.best_ask)

Protocol (`gridmarket.api.feed`, README "Live feed"): a WebSocket at
`/v1/trading_socket/websocket`, Phoenix v1 frames on topic `ws:trading`; `phx_join`, then
`subscribe` to `market.book` for the market. The server answers `ack`, then `book_snapshot`
`{sequence, seq, bids, asks}`, then a `book_update` `{seq, changes: [{sequence, side, price,
quantity}]}` per command that moved the book. `LocalBook` applies the snapshot, skips changes
already in it (sequence at or below the snapshot's) and applies the rest in order, each
setting one level's quantity (`"0"` removes it). A change whose sequence is not the last one
+ 1 is a **gap**: the local book is discarded, `market.book` is subscribed again and updates
are ignored until the fresh snapshot (`BookFeed.resyncs` counts these).

The yielded `OrderBook`s carry `sequence` = the market-wide command number of the last command
applied (`seq`, the numbering of REST `GET /v1/markets/{id}/orderbook`'s `sequence`); levels
have no `order_count` (the stream does not carry it). Prices are `Decimal`, quantities `int`.

Failures: a socket that cannot be opened, closes, or pushes `phx_error` raises `FeedError`; so
does a refused subscription (an unknown market). Callers fall back to polling REST on it.
A heartbeat is sent when nothing arrived for `heartbeat_s`, inside the server's 90 s idle limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Protocol

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

from gridmarket.client.errors import GridmarketError, ResponseFormatError
from gridmarket.client.market_models import BookLevel, OrderBook
from gridmarket.client.parse import Fields

SOCKET_PATH = "/v1/trading_socket/websocket?vsn=1.0.0"
TOPIC = "ws:trading"
BOOK_STREAM = "market.book"
HEARTBEAT_S = 30.0
OPEN_TIMEOUT_S = 5.0


class FeedError(GridmarketError):
    """The live feed cannot be used (unreachable, closed, refused); poll REST instead."""


def feed_url(server_url: str) -> str:
    """`http://host:port` -> `ws://host:port/v1/trading_socket/websocket?vsn=1.0.0`."""
    base = server_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + SOCKET_PATH
    return "ws://" + base.removeprefix("http://") + SOCKET_PATH


class LocalBook:
    """One market's book from a snapshot and sequenced level changes; detects gaps."""

    def __init__(self, market_id: str) -> None:
        self.market_id = market_id
        self.synced = False
        self.sequence = 0
        """The feed's per-market change number of the last change applied."""
        self.seq: int | None = None
        """The market-wide command number of the last command applied."""
        self._sides: dict[str, dict[Decimal, int]] = {"bid": {}, "ask": {}}

    def load(self, snapshot: object) -> None:
        f = Fields(snapshot, "book_snapshot")
        self.sequence = f.whole("sequence")
        self.seq = f.opt_whole("seq")
        for side, key in (("bid", "bids"), ("ask", "asks")):
            levels = f.raw(key)
            if not isinstance(levels, list):
                raise ResponseFormatError(f"book_snapshot.{key}: expected a list", body=snapshot)
            self._sides[side] = {
                level.price: level.quantity for level in map(BookLevel.parse, levels)
            }
        self.synced = True

    def apply(self, update: object) -> bool:
        """Apply an update's changes in order; False (and unsynced) on a gap."""
        f = Fields(update, "book_update")
        changes = f.raw("changes")
        if not isinstance(changes, list):
            raise ResponseFormatError("book_update.changes: expected a list", body=update)
        for raw in changes:
            change = Fields(raw, "book_update.change")
            sequence = change.whole("sequence")
            if sequence <= self.sequence:
                continue  # already in the snapshot
            if sequence != self.sequence + 1:
                self.synced = False
                return False
            side = change.text("side")
            if side not in self._sides:
                raise ResponseFormatError(f"book change side {side!r}", body=raw)
            price, quantity = change.dec("price"), change.whole("quantity")
            if quantity == 0:
                self._sides[side].pop(price, None)
            else:
                self._sides[side][price] = quantity
            self.sequence = sequence
        self.seq = f.opt_whole("seq") or self.seq
        return True

    def view(self, depth: int | None = None) -> OrderBook:
        """The book as the REST client returns it, best prices first, `depth` levels a side."""
        bids = sorted(self._sides["bid"].items(), reverse=True)[:depth]
        asks = sorted(self._sides["ask"].items())[:depth]
        return OrderBook(
            market_id=self.market_id,
            bids=tuple(BookLevel(p, q, None) for p, q in bids),
            asks=tuple(BookLevel(p, q, None) for p, q in asks),
            sequence=self.seq,
            timestamp=None,
        )


class Connection(Protocol):
    def send(self, message: str) -> None: ...
    def recv(self, timeout: float | None = None) -> str | bytes: ...
    def close(self) -> None: ...


Connect = Callable[[str], Connection]


def _connect(url: str) -> Connection:
    return ws_connect(url, open_timeout=OPEN_TIMEOUT_S, max_size=2**24)


class BookFeed:
    """`books()` yields the market's book after the snapshot and after every update."""

    def __init__(
        self,
        server_url: str,
        market_id: str,
        *,
        depth: int | None = None,
        url: str | None = None,
        connect: Connect = _connect,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.url = url or feed_url(server_url)
        self.market_id = market_id
        self.depth = depth
        self.book = LocalBook(market_id)
        self.resyncs = 0
        self._connect = connect
        self._heartbeat_s = heartbeat_s
        self._ref = 0
        self._ws: Connection | None = None

    def _send(self, event: str, payload: Mapping[str, Any], topic: str = TOPIC) -> None:
        assert self._ws is not None
        self._ref += 1
        frame = {"topic": topic, "event": event, "payload": payload, "ref": str(self._ref)}
        self._ws.send(json.dumps(frame))

    def _subscribe(self) -> None:
        stream = {"name": BOOK_STREAM, "market": self.market_id}
        self._send("subscribe", {"streams": [stream], "request_id": f"book-{self._ref + 1}"})

    def books(self) -> Iterator[OrderBook]:
        try:
            self._ws = self._connect(self.url)
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise FeedError(f"cannot open the live feed at {self.url}: {exc}") from None
        try:
            self._send("phx_join", {})
            self._subscribe()
            yield from self._frames()
        except (OSError, WebSocketException, ValueError, ResponseFormatError) as exc:
            raise FeedError(f"the live feed failed: {exc}") from None
        finally:
            self._ws.close()

    def _frames(self) -> Iterator[OrderBook]:
        assert self._ws is not None
        while True:
            try:
                raw = self._ws.recv(timeout=self._heartbeat_s)
            except TimeoutError:
                self._send("heartbeat", {}, topic="phoenix")
                continue
            frame = json.loads(raw)
            if not isinstance(frame, dict):
                continue
            event, payload = frame.get("event"), frame.get("payload")
            if event == "phx_error":
                raise FeedError(f"the live feed closed: {payload}")
            if event == "ack" and isinstance(payload, dict) and payload.get("status") == "error":
                raise FeedError(f"the live feed refused the book: {payload.get('detail')}")
            if event == "book_snapshot":
                self.book.load(payload)
                yield self.book.view(self.depth)
            elif event == "book_update" and self.book.synced:
                if self.book.apply(payload):
                    yield self.book.view(self.depth)
                    continue
                # A gap: the book is unsynced (updates ignored) until the fresh snapshot.
                self.resyncs += 1
                self._subscribe()

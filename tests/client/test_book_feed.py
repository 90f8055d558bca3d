"""`client.book_feed` over a scripted socket: snapshot, sequenced updates, skipping what the
snapshot already holds, a gap answered by resubscribing, and the failures that mean "poll"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from gridmarket.client.book_feed import BookFeed, FeedError, LocalBook, feed_url

MARKET = "text-prime"


def snapshot(sequence: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> Any:
    return {
        "market_id": MARKET,
        "sequence": sequence,
        "seq": sequence * 10,
        "bids": [{"price": p, "quantity": q} for p, q in bids],
        "asks": [{"price": p, "quantity": q} for p, q in asks],
    }


def update(*changes: tuple[int, str, str, str]) -> Any:
    return {
        "market_id": MARKET,
        "seq": changes[-1][0] * 10,
        "changes": [
            {"sequence": s, "side": side, "price": p, "quantity": q} for s, side, p, q in changes
        ],
    }


def push(event: str, payload: Any) -> str:
    return json.dumps({"topic": "ws:trading", "event": event, "payload": payload, "ref": None})


class ScriptedSocket:
    """Answers `recv` from a script (a `TimeoutError` entry means nothing arrived)."""

    def __init__(self, script: list[str | type[Exception]]) -> None:
        self.script = script
        self.sent: list[dict[str, Any]] = []
        self.closed = False

    def send(self, message: str) -> None:
        self.sent.append(json.loads(message))

    def recv(self, timeout: float | None = None) -> str:
        if not self.script:
            raise ConnectionResetError("script over")
        item = self.script.pop(0)
        if isinstance(item, str):
            return item
        raise item()

    def close(self) -> None:
        self.closed = True

    def events(self) -> list[str]:
        return [frame["event"] for frame in self.sent]


def books(socket: ScriptedSocket, count: int) -> Iterator[Any]:
    feed = BookFeed("http://h:1", MARKET, connect=lambda url: socket)
    it = feed.books()
    for _ in range(count):
        yield next(it), feed
    it.close()


def test_the_feed_url_follows_the_server() -> None:
    assert feed_url("http://h:8/") == "ws://h:8/v1/trading_socket/websocket?vsn=1.0.0"
    assert feed_url("https://h").startswith("wss://h/v1/")


def test_snapshot_then_updates_keep_the_book() -> None:
    book = LocalBook(MARKET)
    book.load(snapshot(5, [("1.000", "3"), ("1.100", "1")], [("1.300", "2")]))
    assert book.apply(update((6, "bid", "1.100", "4"), (7, "ask", "1.200", "5")))
    assert book.apply(update((8, "ask", "1.300", "0")))
    view = book.view()
    assert [(level.price, level.quantity) for level in view.bids] == [
        (Decimal("1.1"), 4),
        (Decimal("1"), 3),
    ]
    assert [(level.price, level.quantity) for level in view.asks] == [(Decimal("1.2"), 5)]
    assert view.sequence == 80 and book.sequence == 8
    assert len(book.view(depth=1).bids) == 1


def test_changes_the_snapshot_holds_are_skipped_and_a_gap_unsyncs() -> None:
    book = LocalBook(MARKET)
    book.load(snapshot(5, [("1.000", "3")], []))
    assert book.apply(update((5, "bid", "1.000", "99"), (6, "bid", "1.000", "4")))
    assert book.view().bids[0].quantity == 4
    assert not book.apply(update((8, "bid", "1.000", "1")))
    assert not book.synced and book.view().bids[0].quantity == 4


def test_a_gap_resubscribes_and_waits_for_the_fresh_snapshot() -> None:
    socket = ScriptedSocket(
        [
            push("ack", {"status": "ok"}),
            push("book_snapshot", snapshot(1, [("1.000", "1")], [])),
            push("book_update", update((3, "bid", "1.000", "2"))),  # 2 was missed
            push("book_update", update((4, "bid", "1.000", "7"))),  # ignored: unsynced
            push("ack", {"status": "ok"}),
            push("book_snapshot", snapshot(4, [("1.000", "7")], [])),
            push("book_update", update((5, "ask", "2.000", "1"))),
        ]
    )
    seen = [(book, feed.resyncs) for book, feed in books(socket, 3)]
    assert [book.sequence for book, _ in seen] == [10, 40, 50]
    assert seen[-1][1] == 1
    assert seen[-1][0].asks[0].price == Decimal("2")
    assert socket.events() == ["phx_join", "subscribe", "subscribe"]
    assert socket.sent[2]["payload"]["streams"] == [{"name": "market.book", "market": MARKET}]
    assert socket.closed


def test_quiet_time_sends_a_heartbeat() -> None:
    socket = ScriptedSocket(
        [TimeoutError, push("book_snapshot", snapshot(1, [], [("1.000", "1")]))]
    )
    (book, _), *_ = books(socket, 1)
    assert book.best_ask == Decimal("1")
    assert socket.sent[-1]["topic"] == "phoenix" and socket.events()[-1] == "heartbeat"


@pytest.mark.parametrize(
    "script",
    [
        [push("ack", {"status": "error", "detail": "unknown market"})],
        [push("phx_error", {"reason": "slow_consumer"})],
        [ConnectionResetError],
        ["not json"],
        [push("book_snapshot", {"sequence": 1, "bids": "x", "asks": []})],
    ],
)
def test_failures_are_feed_errors(script: list[str | type[Exception]]) -> None:
    socket = ScriptedSocket(script)
    with pytest.raises(FeedError):
        list(books(socket, 1))
    assert socket.closed


def test_an_unreachable_feed_is_a_feed_error() -> None:
    def refuse(url: str) -> ScriptedSocket:
        raise ConnectionRefusedError(url)

    with pytest.raises(FeedError, match="cannot open"):
        next(BookFeed("http://h:1", MARKET, connect=refuse).books())

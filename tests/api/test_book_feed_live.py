"""The live ladder over a real server: `client.book_feed.BookFeed` keeps a local book identical
to the REST orderbook under a burst of crossing orders and cancels from two accounts, and
`gridmarket book MARKET --json` prints the feed's books as they change (falling back to
polling REST, and saying so, when the socket cannot be opened)."""

from __future__ import annotations

import json
import queue
import random
import signal
import subprocess
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from live_server import GRIDMARKET, Server, clean_env

from gridmarket.client import Client, OrderBook
from gridmarket.client.book_feed import BookFeed

MARKET = "text-prime"
MARKER_PRICE = Decimal("1.999")
LINE_TIMEOUT_S = 30


def _account(server: Server, where: Path, name: str, *, supplier: bool = False) -> Path:
    return server.key_file(where / f"{name}.json", name, deposit_usd="5000", supplier=supplier)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("book-feed") / "home")
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture(scope="module")
def traders(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A supplier with 200 units in trading (issued and moved over HTTP), and a buyer."""
    keys = tmp_path_factory.mktemp("book-feed-keys")
    seller, buyer = _account(server, keys, "seller", supplier=True), _account(server, keys, "buyer")
    seller_id = json.loads(seller.read_text())["account_id"]
    capacity = {"instrument_id": MARKET, "capacity_tokens_per_min": 1_000_000}
    response = server.admin("POST", f"/v1/admin/accounts/{seller_id}/capacity", json=capacity)
    assert response.status_code == 200, response.text
    with Client(server.url, key_file=seller) as client:
        client.issue_supply(MARKET, 200)
        client.transfer_from_issuance(MARKET, 200)
    return seller, buyer


def _levels(book: OrderBook) -> tuple[list[tuple[Decimal, int]], list[tuple[Decimal, int]]]:
    return (
        [(level.price, level.quantity) for level in book.bids],
        [(level.price, level.quantity) for level in book.asks],
    )


def _burst(server: Server, seller: Path, buyer: Path, orders: int) -> None:
    """Crossing limit orders from both sides, some cancelled; then the marker bid, last."""
    rng = random.Random(7)
    with Client(server.url, key_file=seller) as sell, Client(server.url, key_file=buyer) as buy:
        for n in range(orders):
            client, side, low = (sell, "sell", 2050) if n % 2 else (buy, "buy", 2000)
            price = Decimal(low + rng.randrange(0, 100, 5)) / 1000
            order = client.place_order(MARKET, side, rng.randint(1, 4), price=price)
            if n % 5 == 0 and order.is_open:  # one thread places both sides: still open
                client.cancel_order(order.order_id)
        buy.place_order(MARKET, "buy", 1, price=MARKER_PRICE)


def test_the_local_book_matches_rest_after_a_burst(
    server: Server, traders: tuple[Path, Path]
) -> None:
    feed = BookFeed(server.url, MARKET)
    books = feed.books()
    first = next(books)  # the snapshot, before any order
    assert first.market_id == MARKET
    burst = threading.Thread(target=_burst, args=(server, *traders, 80))
    burst.start()
    updates = 0
    try:
        for view in books:
            updates += 1
            if MARKER_PRICE in [level.price for level in view.bids]:
                break
    finally:
        books.close()
        burst.join()
    with Client(server.url) as public:
        rest = public.orderbook(MARKET, depth=1000)
    assert view.sequence == rest.sequence
    assert _levels(view) == _levels(rest)
    assert rest.bids and rest.asks and updates > 40
    assert feed.resyncs == 0


def _reader(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _book_process(server: Server, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(GRIDMARKET),
            "book",
            MARKET,
            "--json",
            "--depth",
            "100",
            "--server",
            server.url,
            *extra,
        ],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test runner may start children with SIGINT ignored; Ctrl-C must reach this one.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    return err


def _next_book(lines: queue.Queue[str]) -> Any:
    return json.loads(lines.get(timeout=LINE_TIMEOUT_S))


def test_the_cli_ladder_follows_the_feed(server: Server, traders: tuple[Path, Path]) -> None:
    seller, _ = traders
    process = _book_process(server)
    lines = _reader(process)
    with Client(server.url, key_file=seller) as client:
        try:
            before = _next_book(lines)  # the feed's snapshot
            order = client.place_order(MARKET, "sell", 2, price="2.777")
            after = _next_book(lines)
            while after["sequence"] == before["sequence"]:
                after = _next_book(lines)
            rest = client.orderbook(MARKET, depth=100)
            assert after["sequence"] == rest.sequence
            assert [(a["price"], a["quantity"]) for a in after["asks"]] == [
                (format(level.price, "f"), level.quantity) for level in rest.asks
            ]
            assert {"price": "2.777", "quantity": 2, "order_count": None} in after["asks"]
            client.cancel_order(order.order_id)
            gone = _next_book(lines)
            assert "2.777" not in [a["price"] for a in gone["asks"]]
        finally:
            err = _stop(process)
    assert err == ""  # no fallback note: the feed was used


def test_the_cli_ladder_polls_when_the_feed_is_unreachable(
    server: Server, traders: tuple[Path, Path]
) -> None:
    process = _book_process(server, "--interval", "0.2", "--feed-url", "ws://127.0.0.1:9/none")
    lines = _reader(process)
    try:
        polled = [_next_book(lines) for _ in range(2)]
    finally:
        err = _stop(process)
    assert "cannot open the live feed" in err and "polling the REST book" in err
    assert all(book["timestamp"] for book in polled)  # REST books carry a timestamp
    assert polled[0]["market_id"] == MARKET

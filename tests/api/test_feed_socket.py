"""The live feed on a real server: Phoenix framing, public streams, signed user orders, the book.

A `gridmarket serve` process on a seeded data dir (suppliers who can buy and sell), orders
placed over the signed HTTP API, and `websockets` clients speaking the channel protocol as The
Grid's TradingGatewayClient does (grid-client-contract.md §5.1).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from feed_client import MARKET, Channel, Trader, seed_traders
from live_server import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[Trader]]]:
    data_dir = tmp_path_factory.mktemp("feed") / "home"
    seeded = asyncio.run(seed_traders(data_dir, 3))
    running = Server(data_dir)
    try:
        yield running, [Trader(running, account, signer) for account, signer in seeded]
    finally:
        running.kill()


@pytest.fixture
def live(server: tuple[Server, list[Trader]]) -> Server:
    return server[0]


@pytest.fixture
def traders(server: tuple[Server, list[Trader]]) -> list[Trader]:
    return server[1]


def _cancel_all(traders: list[Trader]) -> None:
    for trader in traders:
        response = trader.call("DELETE", "/v1/orders")
        assert response.status_code == 200, response.text


# -- framing and errors -------------------------------------------------------------------------


async def test_join_heartbeat_and_channel_errors(live: Server) -> None:
    channel = await Channel.open(live.url)
    try:
        refused = await channel.call("subscribe", {"streams": [{"name": "market.trades"}]})
        assert refused["status"] == "error"
        assert refused["response"]["reason"] == "not_joined"
        await channel.join()
        beat = await channel.send("heartbeat", {}, topic="phoenix")
        reply = await channel.expect("phx_reply", beat)
        assert reply["topic"] == "phoenix" and reply["payload"]["status"] == "ok"
        other = await channel.call("phx_join", {}, topic="rooms:lobby")
        assert other["response"]["reason"] == "unmatched_topic"
        unknown = await channel.call("dance")
        assert (unknown["status"], unknown["response"]["reason"]) == ("error", "unknown_event")
        ack = await channel.subscribe({"name": "market.book", "market": MARKET})
        assert ack["status"] == "ok"
        await channel.expect("book_snapshot")
        assert await channel.call("phx_leave") == {"status": "ok", "response": {}}
        after = await channel.call("subscribe", {"streams": [{"name": "market.trades"}]})
        assert after["response"]["reason"] == "not_joined"
        await channel.join()  # joining again starts with no streams: the leave dropped them
        full = _streams(live)[:10]
        assert {"name": "market.book", "market": MARKET} in full
        assert (await channel.subscribe(*full))["status"] == "ok"
    finally:
        await channel.close()


async def test_malformed_frames_get_errors_and_the_connection_lives_on(live: Server) -> None:
    channel = await Channel.open(live.url)
    try:
        await channel.join()
        for bad in ("not json", "[1, 2]", "42", '{"topic": 5, "event": "x"}', "[" * 100_00):
            await channel.ws.send(bad)
            error = await channel.expect("phx_error")
            assert error["payload"]["reason"] in ("malformed_frame", "frame_too_large"), bad
        await channel.ws.send(json.dumps({"topic": "ws:trading", "event": "x", "payload": []}))
        error = await channel.expect("phx_error")
        assert error["payload"]["reason"] == "malformed_frame"
        bad_payload = {"topic": "ws:trading", "event": "subscribe", "payload": [], "ref": "77"}
        await channel.ws.send(json.dumps(bad_payload))
        reply = await channel.expect("phx_reply", "77")
        assert reply["payload"]["status"] == "error"
        assert reply["payload"]["response"]["reason"] == "malformed_frame"
        await channel.ws.send(b"\x00\x01binary")
        error = await channel.expect("phx_error")
        assert error["payload"]["reason"] == "binary_frames_unsupported"
        await channel.ws.send(
            json.dumps({"topic": "phoenix", "event": "heartbeat", "x": "y" * 20_000})
        )
        error = await channel.expect("phx_error")
        assert error["payload"]["reason"] == "frame_too_large"
        for streams in ("all", [], [{"name": 5}], [{"name": "market.trades", "market": ["x"]}]):
            ack = await channel.subscribe_raw(streams)
            assert ack["status"] == "error" and ack["reason"] in ("invalid_streams",), streams
        await channel.sync()  # still answering
    finally:
        await channel.close()
    assert httpx.get(f"{live.url}/v1/health", timeout=5).status_code == 200


async def test_v2_array_frames_are_answered_as_arrays(live: Server) -> None:
    channel = await Channel.open(live.url, "/v1/trading_socket/websocket?vsn=2.0.0")
    try:
        await channel.ws.send(json.dumps(["3", "3", "ws:trading", "phx_join", {}]))
        reply = json.loads(await asyncio.wait_for(channel.ws.recv(), 5))
        assert reply == ["3", "3", "ws:trading", "phx_reply", {"status": "ok", "response": {}}]
        await channel.ws.send(json.dumps([None, "4", "phoenix", "heartbeat", {}]))
        reply = json.loads(await asyncio.wait_for(channel.ws.recv(), 5))
        assert reply[:4] == [None, "4", "phoenix", "phx_reply"]
    finally:
        await channel.close()


async def test_the_default_client_url_v1_is_accepted_too(live: Server) -> None:
    channel = await Channel.open(live.url, "/v1/")
    try:
        await channel.join()
    finally:
        await channel.close()


def _streams(live: Server) -> list[dict[str, str]]:
    """Every public stream of every market (at least 12), MARKET's three first."""
    markets = httpx.get(f"{live.url}/v1/markets?limit=100", timeout=5).json()["data"]
    ids = [MARKET, *sorted(m["market_id"] for m in markets if m["market_id"] != MARKET)]
    names = ("market.book", "market.trades", "market.ticker")
    streams = [{"name": n, "market": m} for m in ids for n in names]
    assert len(streams) >= 12, "the catalogue has enough markets"
    return streams


# -- public streams -----------------------------------------------------------------------------


async def test_public_trades_and_ticker_after_orders_trade(
    live: Server, traders: list[Trader]
) -> None:
    seller, buyer = traders[0], traders[1]
    channel = await Channel.open(live.url)
    try:
        await channel.join()
        ack = await channel.subscribe(
            {"name": "market.trades", "market": MARKET},
            {"name": "market.ticker", "market": MARKET},
        )
        assert ack["status"] == "ok" and ack["action"] == "subscribe"
        assert ack["streams"] == [
            {"name": "market.trades", "market": MARKET},
            {"name": "market.ticker", "market": MARKET},
        ]
        first = await channel.expect("market_ticker")
        assert first["payload"]["market_id"] == MARKET
        assert {"last_price", "bid", "ask", "volume_24h"} <= set(first["payload"])
        volume_before = int(first["payload"]["volume_24h"])

        ask = seller.place("sell", "1.234", 3)
        assert ask.status_code == 201, ask.text
        bid = buyer.place("buy", "1.234", 2)
        assert bid.status_code == 201, bid.text
        trade = (await channel.expect("new_trade"))["payload"]["data"]
        assert trade["market_id"] == MARKET
        assert (trade["price"], trade["quantity"], trade["side"]) == ("1.234", "2", "buy")
        assert trade["maker_order_id"] == ask.json()["data"]["order_id"]
        assert trade["taker_order_id"] == bid.json()["data"]["order_id"]
        assert trade["executed_at"].endswith("Z") and trade["trade_id"]
        while True:  # tickers follow every change of the top of book; wait for the trade's
            ticker = (await channel.expect("market_ticker"))["payload"]
            if ticker["last_price"] == "1.234":
                break
        assert "data" not in ticker
        assert int(ticker["volume_24h"]) == volume_before + 2
        assert ticker["ask"] == "1.234"  # one unit of the ask is left
        public = httpx.get(f"{live.url}/v1/markets/{MARKET}/trades?limit=1", timeout=5).json()
        assert public["data"][0]["trade_id"] == trade["trade_id"]
    finally:
        await channel.close()
        _cancel_all(traders)


async def test_subscription_limits_and_refusals(live: Server) -> None:
    channel = await Channel.open(live.url)
    try:
        await channel.join()
        eleven = [{"name": "market.trades", "market": f"m{n}"} for n in range(11)]
        too_many = await channel.subscribe(*eleven)
        assert (too_many["status"], too_many["reason"]) == ("error", "too_many_streams")
        mixed = await channel.subscribe(
            {"name": "market.trades", "market": MARKET},
            {"name": "market.trades", "market": "no-such-market"},
            {"name": "market.candles", "market": MARKET},
            {"name": "market.trades"},
        )
        assert mixed["status"] == "partial"
        assert mixed["streams"] == [{"name": "market.trades", "market": MARKET}]
        reasons = sorted(r["reason"] for r in mixed["rejected"])
        assert reasons == ["market_not_found", "market_required", "unknown_stream"]
        streams = [s for s in _streams(live) if s["market"] != MARKET][:9]
        filled = await channel.subscribe(*streams)  # with the one above: 10
        assert filled["status"] == "ok", filled
        over = await channel.subscribe({"name": "market.book", "market": MARKET})
        assert over["status"] == "error" and over["rejected"][0]["reason"] == "subscription_limit"
        gone = await channel.subscribe(streams[0], action="unsubscribe")
        assert gone["status"] == "ok" and gone["action"] == "unsubscribe"
        again = await channel.subscribe({"name": "market.book", "market": MARKET})
        assert again["status"] == "ok"
    finally:
        await channel.close()


# -- user.orders --------------------------------------------------------------------------------


async def test_user_orders_need_authenticate_and_show_only_own_orders(
    live: Server, traders: list[Trader]
) -> None:
    alice, bob = traders[0], traders[1]
    a = await Channel.open(live.url)
    b = await Channel.open(live.url)
    try:
        for channel in (a, b):
            await channel.join()
        before = await a.subscribe({"name": "user.orders"})
        assert before["status"] == "error" and before["rejected"][0]["reason"] == "unauthenticated"

        forged = alice.signer.sign_ws_authenticate(int(time.time()))
        forged["signature"] = bob.signer.sign_ws_authenticate(int(time.time()))["signature"]
        refused = await a.call("authenticate", forged)
        assert (refused["status"], refused["response"]["reason"]) == ("error", "invalid_signature")
        stale = await a.authenticate(alice.signer, int(time.time()) - 120)
        assert (stale["status"], stale["response"]["reason"]) == ("error", "expired_timestamp")
        missing = await a.call("authenticate", {"timestamp": str(int(time.time()))})
        assert missing["status"] == "error"
        still = await a.subscribe({"name": "user.orders"})
        assert still["status"] == "error"

        ok = await a.authenticate(alice.signer)
        assert ok == {"status": "ok", "response": {"account_id": alice.account_id}}
        assert (await b.authenticate(bob.signer))["status"] == "ok"
        for channel in (a, b):
            ack = await channel.subscribe({"name": "user.orders"})
            assert ack["status"] == "ok" and ack["streams"] == [{"name": "user.orders"}]

        bobs = bob.place("buy", "0.800", 4, client_order_id="bob-1")
        assert bobs.status_code == 201, bobs.text
        alices = alice.place("sell", "0.800", 1, client_order_id="alice-1")
        assert alices.status_code == 201, alices.text
        alice_id = alices.json()["data"]["order_id"]
        bob_id = bobs.json()["data"]["order_id"]

        new = (await a.expect("new_order"))["payload"]["data"]
        assert (new["order_id"], new["client_order_id"]) == (alice_id, "alice-1")
        assert new["trading_account_id"] == alice.account_id
        assert (new["side"], new["order_type"], new["status"]) == ("sell", "limit", "active")
        assert (new["original_quantity"], new["price"]) == ("1", "0.800")
        update = (await a.expect("order_update"))["payload"]["data"]
        assert (update["order_id"], update["status"]) == (alice_id, "filled")
        assert (update["filled_quantity"], update["remaining_quantity"]) == ("1", "0")
        assert update["average_fill_price"] == "0.800"

        bob_new = (await b.expect("new_order"))["payload"]["data"]
        assert bob_new["order_id"] == bob_id
        bob_update = (await b.expect("order_update"))["payload"]["data"]
        assert (bob_update["order_id"], bob_update["status"]) == (bob_id, "partially_filled")
        assert (bob_update["filled_quantity"], bob_update["remaining_quantity"]) == ("1", "3")
        assert bob.call("DELETE", f"/v1/orders/{bob_id}").status_code == 204
        cancelled = (await b.expect("order_update"))["payload"]["data"]
        assert (cancelled["order_id"], cancelled["status"]) == (bob_id, "cancelled")

        for channel in (a, b):
            await channel.sync()
        alice_saw = _order_ids(a)
        bob_saw = _order_ids(b)
        assert alice_saw == {alice_id} and bob_saw == {bob_id}

        other = await a.authenticate(bob.signer)
        assert other["response"]["reason"] == "already_authenticated"
    finally:
        await a.close()
        await b.close()
        _cancel_all(traders)


def _order_ids(channel: Channel) -> set[str]:
    return {
        f["payload"]["data"]["order_id"]
        for f in channel.seen
        if f["event"] in ("new_order", "order_update")
    }


# -- the full-depth book ------------------------------------------------------------------------


class LocalBook:
    """What a client keeps: a snapshot plus every change, checking the sequence numbers."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.sequence: int = snapshot["sequence"]
        self.sides: dict[str, dict[str, str]] = {
            "bid": {level["price"]: level["quantity"] for level in snapshot["bids"]},
            "ask": {level["price"]: level["quantity"] for level in snapshot["asks"]},
        }
        self.changes = 0

    def apply(self, update: dict[str, Any]) -> None:
        assert update["first_sequence"] == self.sequence + 1, "a gap in the book feed"
        for change in update["changes"]:
            assert change["sequence"] == self.sequence + 1, "a gap in the book feed"
            self.sequence = change["sequence"]
            side = self.sides[change["side"]]
            if change["quantity"] == "0":
                assert change["price"] in side, "a removed level that was not there"
                del side[change["price"]]
            else:
                side[change["price"]] = change["quantity"]
            self.changes += 1
        assert update["last_sequence"] == self.sequence

    def levels(self, side: str) -> list[tuple[str, str]]:
        ordered = sorted(self.sides[side].items(), key=lambda kv: _micros(kv[0]))
        return ordered[::-1] if side == "bid" else ordered


def _micros(price: str) -> int:
    whole, _, fraction = price.partition(".")
    return int(whole) * 1_000_000 + int(fraction.ljust(6, "0"))


async def _follow_book(channel: Channel) -> LocalBook:
    ack = await channel.subscribe({"name": "market.book", "market": MARKET})
    assert ack["status"] == "ok"
    snapshot = (await channel.expect("book_snapshot"))["payload"]
    assert snapshot["market_id"] == MARKET
    return LocalBook(snapshot)


async def _apply_until(channel: Channel, book: LocalBook, price: str) -> None:
    """Apply book updates until the bid level at `price` appears (the burst's last order)."""
    while price not in book.sides["bid"]:
        book.apply((await channel.expect("book_update"))["payload"])


async def test_a_client_applying_snapshot_and_diffs_holds_the_rest_orderbook(
    live: Server, traders: list[Trader]
) -> None:
    rng = random.Random(7)
    early = await Channel.open(live.url)
    late = await Channel.open(live.url)
    try:
        await early.join()
        await late.join()
        early_book = await _follow_book(early)
        open_orders: list[tuple[Trader, str]] = []
        for step in range(160):
            trader = rng.choice(traders)
            roll = rng.random()
            if step == 80:
                late_book = await _follow_book(late)  # joins mid-burst, from its own snapshot
            if roll < 0.25 and open_orders:
                owner, order_id = open_orders.pop(rng.randrange(len(open_orders)))
                response = owner.call("DELETE", f"/v1/orders/{order_id}")
                assert response.status_code in (204, 404, 409, 422), response.text
                continue
            side = rng.choice(("buy", "sell"))
            quantity = rng.randint(1, 5)
            if roll < 0.32:
                response = trader.place(side, None, quantity)
            else:
                mills = rng.randint(950, 1_050)
                price = f"{mills // 1000}.{mills % 1000:03d}"
                tif = rng.choice(("gtc", "gtc", "gtc", "ioc"))
                response = trader.place(side, price, quantity, time_in_force=tif)
            if response.status_code == 201 and response.json()["data"]["status"] in (
                "active",
                "partially_filled",
            ):
                open_orders.append((trader, response.json()["data"]["order_id"]))
        sentinel = traders[0].place("buy", "0.600", 1)  # below every ask: rests, ends the burst
        assert sentinel.status_code == 201, sentinel.text
        await _apply_until(early, early_book, "0.600")
        await _apply_until(late, late_book, "0.600")

        rest = httpx.get(f"{live.url}/v1/markets/{MARKET}/orderbook?depth=100", timeout=5)
        data = rest.json()["data"]
        want_bids = [(level["price"], level["quantity"]) for level in data["bids"]]
        want_asks = [(level["price"], level["quantity"]) for level in data["asks"]]
        assert len(want_bids) < 100 and len(want_asks) < 100  # the whole book fits the depth
        for book in (early_book, late_book):
            assert book.levels("bid") == want_bids
            assert book.levels("ask") == want_asks
        assert early_book.changes > 100  # the burst moved the book a lot
        assert late_book.sequence == early_book.sequence
        # Resync as a client would after a gap: subscribe again, get a fresh snapshot.
        again = await _follow_book(early)
        assert again.sequence == early_book.sequence
        assert again.sides == early_book.sides
    finally:
        await early.close()
        await late.close()
        _cancel_all(traders)

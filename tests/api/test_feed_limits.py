"""The live feed's limits on a real uvicorn server in this process, with small limits set.

Connections per process, the bounded outbox (a slow consumer is closed with a reason while
the market and the other connections go on), and the idle timeout that heartbeats reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from feed_client import MARKET, Channel
from live_server import free_port
from websockets.exceptions import ConnectionClosed

from gridmarket.api import feed
from gridmarket.api.app import ServiceFactory, create_app
from gridmarket.api.feed.hub import FeedLimits
from gridmarket.core.commands import (
    CreateAccount,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
)
from gridmarket.core.ids import AccountId
from gridmarket.service.market import MarketService
from gridmarket.service.runtime import open_market
from gridmarket.service.sequencer import SequencerLimits
from gridmarket.settings import Settings

LIMITS = FeedLimits(max_connections=3, max_outbound_messages=3, idle_timeout_s=1.0)


@contextlib.asynccontextmanager
async def _serving(
    tmp_path: Path, factory: ServiceFactory = open_market
) -> AsyncIterator[tuple[str, MarketService]]:
    settings = Settings.resolve(data_dir=tmp_path / "home")
    settings.ensure_data_dir()
    app = create_app(settings, service_factory=factory)
    app.include_router(feed.router)
    app.state.feed_limits = LIMITS
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.state.market
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, MarketService]]:
    async with _serving(tmp_path) as running:
        yield running


async def _closed(channel: Channel) -> tuple[int, str, list[dict[str, Any]]]:
    """Read until the server closes; (close code, reason, frames read on the way)."""
    frames = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(channel.ws.recv(), 5)))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code, closed.rcvd.reason, frames


async def test_connections_beyond_the_limit_are_closed_with_a_reason(
    served: tuple[str, MarketService],
) -> None:
    url, _ = served
    channels = [await Channel.open(url) for _ in range(LIMITS.max_connections)]
    try:
        for channel in channels:
            await channel.join()
        extra = await Channel.open(url)
        code, reason, _ = await _closed(extra)
        assert (code, reason) == (1013, "too_many_connections")
        await channels[0].close()
        await asyncio.sleep(0.1)
        replacement = await Channel.open(url)  # a freed place can be taken again
        await replacement.join()
        channels[0] = replacement
    finally:
        for channel in channels:
            await channel.close()


async def test_a_slow_consumer_is_dropped_and_the_market_goes_on(
    served: tuple[str, MarketService],
) -> None:
    url, market = served
    healthy = await Channel.open(url)
    slow = await Channel.open(url)
    try:
        await healthy.join()
        assert (await healthy.subscribe({"name": "market.book", "market": MARKET}))[
            "status"
        ] == "ok"
        await healthy.expect("book_snapshot")
        await slow.join()
        # Ack, reply, snapshot and ticker in one step: one more than the outbox holds.
        streams = [{"name": n, "market": MARKET} for n in ("market.book", "market.ticker")]
        await slow.send("subscribe", {"streams": streams, "request_id": "r"})
        code, reason, frames = await _closed(slow)
        assert (code, reason) == (1008, "slow_consumer")
        assert frames[-1]["event"] == "phx_error"
        assert frames[-1]["payload"]["reason"] == "slow_consumer"
        assert len(frames) <= LIMITS.max_outbound_messages

        supplier = AccountId("s")
        for command in (
            CreateAccount(supplier, is_supplier=True),
            SetSupplierCapacity(supplier, MARKET, 10**9),
            IssueUnits(supplier, MARKET, 10),
            TransferIssuanceToTrading(supplier, MARKET, 10),
            PlaceOrder(supplier, MARKET, "sell", "limit", 4, 2_000_000),
        ):
            await market.submit(command)
        update = (await healthy.expect("book_update"))["payload"]
        assert update["changes"] == [
            {"sequence": 1, "side": "ask", "price": "2.000", "quantity": "4"}
        ]
    finally:
        await healthy.close()
        await slow.close()


async def test_an_idle_connection_is_closed_and_heartbeats_keep_one_open(
    served: tuple[str, MarketService],
) -> None:
    url, _ = served
    idle = await Channel.open(url)
    beating = await Channel.open(url)
    try:
        await idle.join()
        await beating.join()
        for _ in range(6):
            await asyncio.sleep(LIMITS.idle_timeout_s / 3)
            await beating.sync()
        code, reason, frames = await _closed(idle)
        assert (code, reason) == (1008, "idle_timeout")
        assert frames[-1]["payload"]["reason"] == "idle_timeout"
        await beating.sync()
    finally:
        await idle.close()
        await beating.close()


async def test_a_hub_that_falls_behind_the_feed_closes_its_connections_to_resync(
    tmp_path: Path,
) -> None:
    # A feed that holds one outcome per subscriber: any batch of two or more drops the hub.
    def tiny_feed(settings: Settings) -> MarketService:
        limits = SequencerLimits(max_subscriber_outcomes=1)
        return MarketService.from_url(settings.database_url, limits=limits, tune_gc=False)

    async with _serving(tmp_path, tiny_feed) as (url, market):
        channel = await Channel.open(url)
        await channel.join()
        await channel.subscribe({"name": "market.book", "market": MARKET})
        supplier = AccountId("s")
        for command in (
            CreateAccount(supplier, is_supplier=True),
            SetSupplierCapacity(supplier, MARKET, 10**9),
            IssueUnits(supplier, MARKET, 100),
            TransferIssuanceToTrading(supplier, MARKET, 100),
        ):
            await market.submit(command)
        await asyncio.gather(
            *(
                market.submit(PlaceOrder(supplier, MARKET, "sell", "limit", 1, p * 1_000))
                for p in range(2_000, 2_020)
            )
        )
        code, reason, frames = await _closed(channel)
        assert (code, reason) == (1012, "resync")
        assert frames[-1]["payload"]["reason"] == "resync"
        again = await Channel.open(url)  # a new connection gets a snapshot of the whole book
        try:
            await again.join()
            await again.subscribe({"name": "market.book", "market": MARKET})
            snapshot = (await again.expect("book_snapshot"))["payload"]
            prices = [level["price"] for level in snapshot["asks"]]
            assert prices == [f"{p // 1000}.{p % 1000:03d}" for p in range(2_000, 2_020)]
        finally:
            await again.close()

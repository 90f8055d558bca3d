"""Helpers for the live-feed tests: a seeded data dir, a signed HTTP trader, a channel client.

The seed runs the market service in the test process on the server's data dir before the
server starts: supplier accounts (advanced mode) with USD and units in trading, so the tests
can both buy and sell over the signed HTTP API; the server then replays that log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
from live_server import Server
from websockets.asyncio.client import ClientConnection, connect

from gridmarket.auth.signing import Signer
from gridmarket.core.commands import IssueUnits, SetSupplierCapacity, TransferIssuanceToTrading
from gridmarket.core.ids import InstrumentId
from gridmarket.service.accounts import deposit, open_account
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings

MARKET = InstrumentId("text-prime")
USD = 1_000_000
SOCKET_PATH = "/v1/trading_socket/websocket?vsn=1.0.0"
RECEIVE_TIMEOUT_S = 10.0


async def seed_traders(data_dir: Path, count: int) -> list[tuple[str, Signer]]:
    """`count` advanced-mode suppliers with $100,000 and 100,000 units of MARKET in trading."""
    settings = Settings.resolve(data_dir=data_dir)
    settings.ensure_data_dir()
    traders = []
    async with MarketService.from_url(settings.database_url, tune_gc=False) as market:
        for n in range(count):
            opened = await open_account(market, name=f"t{n}", is_supplier=True, mode="advanced")
            account = opened.account_id
            await deposit(market, account, 100_000 * USD)
            await market.submit(SetSupplierCapacity(account, MARKET, 10**11))
            await market.submit(IssueUnits(account, MARKET, 100_000))
            await market.submit(TransferIssuanceToTrading(account, MARKET, 100_000))
            traders.append((account, Signer(base64.b64decode(opened.private_key))))
    return traders


class Trader:
    """Signed Trading API requests as The Grid's client sends them."""

    def __init__(self, server: Server, account_id: str, signer: Signer) -> None:
        self.server = server
        self.account_id = account_id
        self.signer = signer
        self._used: set[tuple[str, str, bytes, int]] = set()
        self.http = httpx.Client(base_url=server.url, timeout=10)

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        when = int(time.time())
        while (method, path, raw, when) in self._used:  # one signature per write (replay guard)
            when -= 1
        self._used.add((method, path, raw, when))
        headers = self.signer.sign_request(method, path, raw, when)
        headers["Content-Type"] = "application/json"
        return self.http.request(method, path, content=raw, headers=headers)

    def place(self, side: str, price: str | None, quantity: int, **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "market_id": MARKET,
            "side": side,
            "type": "limit" if price is not None else "market",
            "quantity": str(quantity),
            **extra,
        }
        if price is not None:
            body["price"] = price
            body.setdefault("time_in_force", "gtc")
        return self.call("POST", "/v1/orders", body)


class Channel:
    """A Phoenix v1 channel client like The Grid's TradingGatewayClient (string refs)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ref = 0
        #: Frames received but not yet asked for, in arrival order.
        self.inbox: list[dict[str, Any]] = []
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, server_url: str, path: str = SOCKET_PATH) -> Channel:
        ws = await connect(server_url.replace("http://", "ws://") + path)
        return cls(ws)

    async def send(self, event: str, payload: Any = None, topic: str = "ws:trading") -> str:
        self.ref += 1
        ref = str(self.ref)
        frame = {"topic": topic, "event": event, "payload": {} if payload is None else payload}
        await self.ws.send(json.dumps(frame | {"ref": ref}))
        return ref

    async def _next(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), RECEIVE_TIMEOUT_S)
        frame: dict[str, Any] = json.loads(raw)
        self.seen.append(frame)
        return frame

    async def expect(self, event: str, ref: str | None = None) -> dict[str, Any]:
        """The first frame (queued or next) with this event (and ref)."""
        for index, frame in enumerate(self.inbox):
            if frame["event"] == event and (ref is None or frame["ref"] == ref):
                return self.inbox.pop(index)
        while True:
            frame = await self._next()
            if frame["event"] == event and (ref is None or frame["ref"] == ref):
                return frame
            self.inbox.append(frame)

    async def call(self, event: str, payload: Any = None, topic: str = "ws:trading") -> Any:
        """Send and wait for the phx_reply with the same ref; its payload."""
        ref = await self.send(event, payload, topic)
        return (await self.expect("phx_reply", ref))["payload"]

    async def join(self) -> None:
        assert await self.call("phx_join") == {"status": "ok", "response": {}}

    async def authenticate(self, signer: Signer, timestamp_s: int | None = None) -> Any:
        when = int(time.time()) if timestamp_s is None else timestamp_s
        return await self.call("authenticate", signer.sign_ws_authenticate(when))

    async def subscribe(self, *streams: dict[str, str], action: str = "subscribe") -> Any:
        request_id = f"req-{time.time_ns()}"
        await self.send(action, {"streams": list(streams), "request_id": request_id})
        ack = await self.expect("ack")
        assert ack["payload"]["request_id"] == request_id
        return ack["payload"]

    async def subscribe_raw(self, streams: Any) -> Any:
        """A subscribe with any `streams` value (for refusals); the ack's payload."""
        await self.send("subscribe", {"streams": streams, "request_id": "raw"})
        return (await self.expect("ack"))["payload"]

    async def sync(self) -> None:
        """Wait until every frame the server sent before now has arrived (a heartbeat round)."""
        await self.call("heartbeat", {}, topic="phoenix")

    async def close(self) -> None:
        await self.ws.close()

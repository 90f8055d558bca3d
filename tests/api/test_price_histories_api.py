"""GET /v1/price-histories on a real `gridmarket serve`: candles, queries, errors, restarts.

History is made before the server starts: an in-process market on the server's own SQLite
file, with a clock set by the test, trades a table at known times three to four weeks ago
(so they are past the 7 days of 1-minute candles, within the hour tier). Then the server
starts, and one more trade is placed over HTTP with signed orders, at the real time. The
server is then restarted and must answer the same candles.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import Server

from gridmarket.auth.signing import Signer
from gridmarket.core.commands import (
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
)
from gridmarket.core.events import Trade
from gridmarket.core.ids import InstrumentId
from gridmarket.service.accounts import deposit, open_account
from gridmarket.service.candles import HOUR_MS, MINUTE_MS, WEEK_MS, period_start_ms
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings

TP = InstrumentId("text-prime")
USD = 1_000_000
PATH = "/v1/price-histories"
#: The Monday 00:00 UTC starting the week 3 weeks ago: 21 to 28 days before now.
T0 = period_start_ms(int(time.time() * 1_000) - 3 * WEEK_MS, WEEK_MS)
#: (ts_ms, price_usd_micros, quantity_units): each a sell resting, then a buy crossing it.
HISTORY = [
    (T0, 2_000_000, 1),
    (T0 + MINUTE_MS - 1, 2_500_000, 2),
    (T0 + MINUTE_MS, 1_500_000, 3),
    (T0 + WEEK_MS - 1, 2_000_000, 2),
    (T0 + WEEK_MS, 1_200_000, 5),  # each price within the 50% band around the last
]


class Account:
    def __init__(self, account_id: str, private_key: str) -> None:
        self.account_id = account_id
        self.signer = Signer(base64.b64decode(private_key))

    def place(self, url: str, side: str, price: str, quantity: str) -> dict[str, Any]:
        body = {
            "market_id": TP,
            "side": side,
            "type": "limit",
            "quantity": quantity,
            "price": price,
            "time_in_force": "gtc",
        }
        raw = json.dumps(body).encode()
        headers = self.signer.sign_request("POST", "/v1/orders", raw, int(time.time()))
        headers["Content-Type"] = "application/json"
        response = httpx.post(f"{url}/v1/orders", content=raw, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()["data"]
        return order


async def _seed(data_dir: Path) -> tuple[Account, Account]:
    settings = Settings.resolve(data_dir=data_dir, environ={})
    now = [T0 - HOUR_MS]
    market = MarketService.from_url(settings.database_url, clock=lambda: now[0], tune_gc=False)
    async with market:
        seller = await open_account(market, name="seller", is_supplier=True, mode="advanced")
        buyer = await open_account(market, name="buyer", is_supplier=False, mode="advanced")
        await deposit(market, buyer.account_id, 10_000 * USD)
        s, b = seller.account_id, buyer.account_id
        for command in (
            SetSupplierCapacity(s, TP, 10**9),
            IssueUnits(s, TP, 1_000),
            TransferIssuanceToTrading(s, TP, 1_000),
        ):
            await market.submit(command)
        for ts_ms, price, units in HISTORY:
            now[0] = ts_ms
            await market.submit(PlaceOrder(s, TP, "sell", "limit", units, price))
            bought = await market.submit(PlaceOrder(b, TP, "buy", "limit", units, price))
            trades = [e for e in bought.events if type(e) is Trade]
            assert [(t.ts_ms, t.quantity_units) for t in trades] == [(ts_ms, units)]
    return (
        Account(seller.account_id, seller.private_key),
        Account(buyer.account_id, buyer.private_key),
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("candles") / "home"
    data_dir.mkdir()
    seller, buyer = asyncio.run(_seed(data_dir))
    server = Server(data_dir)
    try:
        seller.place(server.url, "sell", "1.500", "1")
        bought = buyer.place(server.url, "buy", "1.500", "1")
        assert bought["status"] == "filled", bought
    finally:
        server.stop()
    yield data_dir


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    running = Server(home)
    try:
        yield running
    finally:
        running.kill()


def _get(server: Server, params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}{PATH}", params=params, timeout=10)


def _candles(server: Server, **params: Any) -> list[dict[str, Any]]:
    response = _get(server, {"market_id": TP, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["paging"]["has_more"] is False
    candles: list[dict[str, Any]] = body["data"]
    return candles


def _s(ms: int) -> int:
    return ms // 1_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _flop(resolution: str, from_ms: int, to_ms: int) -> list[tuple[str, str]]:
    """The query The Grid's client sends for getPriceHistory."""
    pairs = [
        ("market_id", TP),
        ("resolution", resolution),
        ("from", _s(from_ms)),
        ("to", _s(to_ms)),
    ]
    query = []
    for i, (field, value) in enumerate(pairs):
        query += [(f"filters[{i}][field]", field), (f"filters[{i}][value]", str(value))]
    return [*query, ("order_by[]", "period_start"), ("order_directions[]", "asc")]


def test_weekly_candles_by_the_grid_clients_query(server: Server) -> None:
    response = _get(server, _flop("1w", T0, T0 + WEEK_MS))
    assert response.status_code == 200, response.text
    weeks = response.json()["data"]
    assert weeks == [
        {
            "market_id": TP,
            "resolution": "1w",
            "period_start": _iso(T0),
            "period_end": _iso(T0 + WEEK_MS),
            "open": "2.000",
            "high": "2.500",
            "low": "1.500",
            "close": "2.000",
            "volume": "8",
            "quote_volume": "15.500",
            "num_trades": 4,
        },
        {
            "market_id": TP,
            "resolution": "1w",
            "period_start": _iso(T0 + WEEK_MS),
            "period_end": _iso(T0 + 2 * WEEK_MS),
            "open": "1.200",
            "high": "1.200",
            "low": "1.200",
            "close": "1.200",
            "volume": "5",
            "quote_volume": "6.000",
            "num_trades": 1,
        },
    ]
    assert datetime.fromtimestamp(T0 / 1_000, tz=UTC).weekday() == 0  # a Monday
    plain = _candles(server, resolution="1w", **{"from": _s(T0), "to": _s(T0 + WEEK_MS)})
    iso = _candles(server, resolution="1w", **{"from": _iso(T0), "to": _iso(T0 + WEEK_MS)})
    assert plain == iso == weeks


def test_hourly_candles_include_the_live_trade(server: Server) -> None:
    hours = _candles(server, resolution="1h", **{"from": _s(T0 - HOUR_MS)})
    figures = [
        (h["period_start"], h["open"], h["close"], h["volume"], h["num_trades"]) for h in hours
    ]
    assert figures[:3] == [
        (_iso(T0), "2.000", "1.500", "6", 3),
        (_iso(T0 + WEEK_MS - HOUR_MS), "2.000", "2.000", "2", 1),
        (_iso(T0 + WEEK_MS), "1.200", "1.200", "5", 1),
    ]
    assert len(figures) == 4
    live = hours[3]
    assert (live["open"], live["high"], live["close"], live["quote_volume"]) == (
        "1.500",
        "1.500",
        "1.500",
        "1.500",
    )
    assert live["period_start"] > _iso(T0 + 2 * WEEK_MS)
    # With no from and to: up to now, and the last 1,000 periods at most.
    minutes = _candles(server, resolution="1m")
    assert [(m["close"], m["num_trades"]) for m in minutes] == [("1.500", 1)]


def test_paging_walks_every_candle_once_both_ways(server: Server) -> None:
    every = _candles(server, resolution="1h", **{"from": _s(T0)})
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"market_id": TP, "resolution": "1h", "from": _s(T0), "limit": 1}
    while True:
        body = _get(server, params).json()
        seen += body["data"]
        if not body["paging"]["has_more"]:
            break
        params["next"] = body["paging"]["next_cursor"]
    assert seen == every
    del params["next"]
    back = _get(server, params | {"prev": body["paging"]["prev_cursor"]})
    assert back.json()["data"] == every[-2:-1]
    descending = _get(server, params | {"order_direction": "desc", "limit": 1_000}).json()
    assert descending["data"] == every[::-1] and descending["paging"]["has_more"] is False


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"market_id": "nope", "resolution": "1h"}, 404, "market_not_found"),
        ({"market_id": TP, "resolution": "2h"}, 422, "validation_error"),
        ({"resolution": "1h"}, 422, "validation_error"),
        ({"market_id": TP, "resolution": "1h", "from": "20", "to": "10"}, 422, "validation_error"),
        ({"market_id": TP, "resolution": "1h", "from": "yesterday"}, 422, "validation_error"),
        ({"market_id": TP, "resolution": "1h", "from": "-5"}, 422, "validation_error"),
        ({"market_id": TP, "resolution": "1h", "to": "99999999999999"}, 422, "validation_error"),
        ({"market_id": TP, "resolution": "1h", "limit": "0"}, 422, "validation_error"),
        ({"market_id": TP, "resolution": "1h", "limit": "1001"}, 422, "validation_error"),
        ({"market_id": TP, "resolution": "1h", "order_direction": "up"}, 422, "validation_error"),
        ({"market_id": TP, "resolution": "1h", "next": "garbage"}, 422, "validation_error"),
        ({"market_id": TP, "resolution": "1m", "from": str(_s(T0))}, 422, "range_not_retained"),
        (
            {
                "market_id": TP,
                "resolution": "1h",
                "filters[0][field]": "status",
                "filters[0][value]": "x",
            },
            422,
            "validation_error",
        ),
        (
            {
                "market_id": TP,
                "resolution": "1h",
                "filters[0][field]": "market_id",
                "filters[0][value]": "other",
            },
            422,
            "validation_error",
        ),
    ],
)
def test_bad_queries_are_refused_in_the_envelope(
    server: Server, params: dict[str, str], status: int, code: str
) -> None:
    response = _get(server, params)
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert set(errors) == {"detail", "code", "message"}
    assert errors["code"] == code


def test_a_restart_answers_the_same_candles(home: Path, server: Server) -> None:
    queries = [
        {"resolution": resolution, "from": _s(T0 - WEEK_MS)}
        for resolution in ("1h", "4h", "1d", "1w")
    ] + [{"resolution": resolution} for resolution in ("1m", "5m", "15m")]
    before = [_candles(server, **q) for q in queries]
    assert all(before)
    server.stop()
    again = Server(home)
    try:
        assert [_candles(again, **q) for q in queries] == before
    finally:
        again.kill()

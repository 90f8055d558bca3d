"""The public market-data endpoints answer over HTTP in The Grid's shapes, from live state.

State is set up by submitting commands to the app's own `MarketService`; requests go through
`httpx.ASGITransport` with the app's lifespan entered, and, for restarts, through a real
`gridmarket serve` subprocess reading the same SQLite file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridmarket.api.app import create_app
from gridmarket.core.commands import (
    Command,
    CreateAccount,
    Deposit,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
)
from gridmarket.core.events import Trade
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.core.instruments import default_catalogue
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings

TP = InstrumentId("text-prime")
USD = 1_000_000
S1, B1 = AccountId("s1"), AccountId("b1")


class Harness:
    def __init__(self, client: httpx.AsyncClient, market: MarketService) -> None:
        self.client = client
        self.market = market

    async def submit(self, command: Command) -> list[Any]:
        outcome = await self.market.submit(command)
        return outcome.events

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params)

    async def data(self, path: str, **params: Any) -> Any:
        response = await self.get(path, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        return body["data"]


def running(tmp_path: Path) -> AbstractAsyncContextManager[Harness]:
    """An app over the SQLite file in `tmp_path`, its lifespan entered, and a client for it."""
    settings = Settings.resolve(data_dir=tmp_path, environ={})

    def service_factory(settings: Settings) -> MarketService:
        return MarketService.from_url(settings.database_url, tune_gc=False)

    @asynccontextmanager
    async def harness() -> AsyncIterator[Harness]:
        app = create_app(settings, service_factory=service_factory)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gm") as client:
                yield Harness(client, app.state.market)

    return harness()


def order(account: str, side: str, units: int, price_usd_micros: int) -> PlaceOrder:
    return PlaceOrder(AccountId(account), TP, side, "limit", units, price_usd_micros)  # type: ignore[arg-type]


async def trade_a_little(h: Harness) -> None:
    """Five trades on text-prime; the book ends as bids 2.100 x4 (2 orders), 2.000 x10;
    asks 2.600 x3. Trades (oldest first): 2@2.500 buy, 3@2.100 sell, 3@2.500 buy,
    3@2.500 buy, 1@2.600 buy."""
    await h.submit(CreateAccount(S1, is_supplier=True))
    await h.submit(SetSupplierCapacity(S1, TP, 10**9))
    await h.submit(IssueUnits(S1, TP, 100))
    await h.submit(TransferIssuanceToTrading(S1, TP, 100))
    await h.submit(CreateAccount(B1))
    await h.submit(Deposit(B1, 1_000 * USD))
    for command in (
        order("b1", "buy", 10, 2_000_000),
        order("b1", "buy", 5, 2_100_000),
        order("b1", "buy", 2, 2_100_000),
        order("s1", "sell", 5, 2_500_000),
        order("s1", "sell", 3, 2_500_000),
        order("s1", "sell", 4, 2_600_000),
        order("b1", "buy", 2, 2_500_000),
        order("s1", "sell", 3, 2_100_000),
        order("b1", "buy", 7, 2_600_000),
    ):
        events = await h.submit(command)
        assert not any(type(e).__name__ == "OrderRejected" for e in events), events


def expected_trades() -> list[tuple[str, str, str]]:
    """(price, quantity, side), newest first."""
    return [
        ("2.600", "1", "buy"),
        ("2.500", "3", "buy"),
        ("2.500", "3", "buy"),
        ("2.100", "3", "sell"),
        ("2.500", "2", "buy"),
    ]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errors"}
    errors = body["errors"]
    assert set(errors) == {"detail", "code", "message"}
    assert errors["code"] == code
    assert all(isinstance(value, str) and value for value in errors.values())


# -- instruments and markets ----------------------------------------------------------------


async def test_instruments_list_the_catalogue_with_contract_types(tmp_path: Path) -> None:
    """Every instrument validates as the contract's Instrument; the symbol is the id."""
    async with running(tmp_path) as h:
        response = await h.get("/v1/instruments")
        body = response.json()
        by_symbol = await h.data("/v1/instruments/by-symbol/text-max")
        one = await h.data("/v1/instruments/text-prime")

    assert response.status_code == 200
    assert body["paging"] == {"has_more": False, "next_cursor": None, "prev_cursor": None}
    rows = body["data"]
    assert [r["instrument_id"] for r in rows] == sorted(default_catalogue())
    for row in rows:
        for key in ("instrument_id", "id", "symbol", "name", "created_at", "updated_at"):
            assert isinstance(row[key], str), key
        assert row["symbol"] == row["instrument_id"] == row["id"]
        assert row["instrument_type"] == "ai_commodity"
        assert type(row["precision"]) is int and row["precision"] == 3
        assert row["is_active"] is True
        assert isinstance(row["description"], str)
    assert by_symbol["instrument_id"] == "text-max"
    assert one["ai_specs"]["context_window"] == 128_000
    assert one["ai_specs"]["max_output_length"] == 30_000
    assert one["ai_specs"]["token_throughput"] == 40
    assert one["sla_requirements"]["max_latency_ms"] == 4_620
    assert one["sla_requirements"]["quality_score_min"] == 38
    assert one["trading_params"]["price_tick"] == "0.001"
    assert one["created_at"].endswith("Z")


async def test_instruments_page_with_cursors_both_ways(tmp_path: Path) -> None:
    """limit cuts pages; next walks forward to the end, prev walks back to the start."""
    ids = sorted(default_catalogue())
    async with running(tmp_path) as h:
        first = (await h.get("/v1/instruments", limit=4)).json()
        second = (
            await h.get("/v1/instruments", limit=4, next=first["paging"]["next_cursor"])
        ).json()
        last = (
            await h.get("/v1/instruments", limit=4, next=second["paging"]["next_cursor"])
        ).json()
        back = (await h.get("/v1/instruments", limit=4, prev=last["paging"]["prev_cursor"])).json()
        filtered = await h.data("/v1/instruments", symbol="code-max")

    assert [r["id"] for r in first["data"]] == ids[:4]
    assert first["paging"]["prev_cursor"] is None and first["paging"]["has_more"] is True
    assert [r["id"] for r in second["data"]] == ids[4:8]
    assert [r["id"] for r in last["data"]] == ids[8:]
    assert last["paging"] == {
        "has_more": False,
        "next_cursor": None,
        "prev_cursor": last["paging"]["prev_cursor"],
    }
    assert [r["id"] for r in back["data"]] == ids[4:8]
    assert [r["id"] for r in filtered] == ["code-max"]


async def test_markets_one_per_instrument_active_with_its_symbol(tmp_path: Path) -> None:
    """Each market validates as the contract's Market and carries its instrument's symbol."""
    async with running(tmp_path) as h:
        markets = await h.data("/v1/markets")
        one = await h.data("/v1/markets/text-prime")

    assert [m["market_id"] for m in markets] == sorted(default_catalogue())
    for market in markets:
        for key in ("market_id", "id", "name", "status", "created_at", "updated_at", "market_type"):
            assert isinstance(market[key], str), key
        assert market["status"] == "active"
        assert market["symbol"] == market["instrument_symbol"] == market["market_id"]
        assert market["associated_instruments"] == [market["market_id"]]
    assert one["market_id"] == "text-prime"
    assert one["instruments"][0]["symbol"] == "text-prime"


# -- order book -------------------------------------------------------------------------------


async def test_orderbook_aggregates_levels_best_first(tmp_path: Path) -> None:
    """Levels sum the open units of their orders, best price first, prices as strings."""
    async with running(tmp_path) as h:
        await trade_a_little(h)
        book = await h.data("/v1/markets/text-prime/orderbook")
        top = await h.data("/v1/markets/text-prime/orderbook", depth=1)
        committed = h.market.sequencer.committed_seq
        empty = await h.data("/v1/markets/text-max/orderbook", depth=1000)

    assert book["bids"] == [
        {"price": "2.100", "quantity": "4", "order_count": 2},
        {"price": "2.000", "quantity": "10", "order_count": 1},
    ]
    assert book["asks"] == [{"price": "2.600", "quantity": "3", "order_count": 1}]
    assert book["buy"] == book["bids"] and book["sell"] == book["asks"]
    assert book["market_id"] == book["symbol"] == "text-prime"
    assert type(book["sequence"]) is int and book["sequence"] == committed
    assert book["committed_sequence"] == committed
    assert isinstance(book["timestamp"], str)
    assert top["bids"] == book["bids"][:1] and top["asks"] == book["asks"][:1]
    assert empty["bids"] == [] and empty["asks"] == []


async def test_orderbook_sequence_follows_every_command(tmp_path: Path) -> None:
    """A new resting order shows in the next snapshot, with a higher sequence."""
    async with running(tmp_path) as h:
        await trade_a_little(h)
        before = await h.data("/v1/markets/text-prime/orderbook")
        await h.submit(order("s1", "sell", 2, 2_700_000))
        after = await h.data("/v1/markets/text-prime/orderbook")

    assert after["sequence"] == before["sequence"] + 1
    assert after["asks"][-1] == {"price": "2.700", "quantity": "2", "order_count": 1}


# -- trades -----------------------------------------------------------------------------------


async def test_trades_newest_first_with_contract_types(tmp_path: Path) -> None:
    """Public trades: string price/quantity/total, the taker's side, newest first."""
    async with running(tmp_path) as h:
        await trade_a_little(h)
        trades = await h.data("/v1/markets/text-prime/trades")
        other = await h.data("/v1/markets/text-max/trades")

    assert [(t["price"], t["quantity"], t["side"]) for t in trades] == expected_trades()
    ids = [int(t["trade_id"]) for t in trades]
    assert ids == sorted(ids, reverse=True)
    for trade in trades:
        for key in ("trade_id", "id", "market_id", "price", "quantity", "total_value"):
            assert isinstance(trade[key], str), key
        assert trade["market_id"] == "text-prime"
        assert trade["execution_timestamp"].endswith("Z")
    assert trades[1]["total_value"] == "7.500"
    assert other == []


async def test_trades_page_newest_first_both_ways(tmp_path: Path) -> None:
    """limit=2 gives pages [5,4], [3,2], [1]; prev from the last page returns [3,2]."""
    async with running(tmp_path) as h:
        await trade_a_little(h)
        everything = await h.data("/v1/markets/text-prime/trades")
        path = "/v1/markets/text-prime/trades"
        p1 = (await h.get(path, limit=2)).json()
        p2 = (await h.get(path, limit=2, next=p1["paging"]["next_cursor"])).json()
        p3 = (await h.get(path, limit=2, next=p2["paging"]["next_cursor"])).json()
        back = (await h.get(path, limit=2, prev=p3["paging"]["prev_cursor"])).json()
        front = (await h.get(path, limit=2, prev=back["paging"]["prev_cursor"])).json()
        sdk = await h.data(path, page_size=1, **{"order_by[]": "execution_timestamp"})

    ids = [t["trade_id"] for t in everything]
    assert [t["trade_id"] for t in p1["data"]] == ids[:2]
    assert [t["trade_id"] for t in p2["data"]] == ids[2:4]
    assert [t["trade_id"] for t in p3["data"]] == ids[4:]
    assert p3["paging"]["has_more"] is False and p3["paging"]["next_cursor"] is None
    assert [t["trade_id"] for t in back["data"]] == ids[2:4]
    assert [t["trade_id"] for t in front["data"]] == ids[:2]
    assert front["paging"]["prev_cursor"] is None
    assert [t["trade_id"] for t in sdk] == ids[:1]


# -- ticker and stats -------------------------------------------------------------------------


async def test_ticker_and_stats_match_a_hand_computation(tmp_path: Path) -> None:
    """5 trades: open 2.500, high 2.600, low 2.100, close 2.600, 12 units, 28.900 USD."""
    async with running(tmp_path) as h:
        await trade_a_little(h)
        ticker = await h.data("/v1/markets/text-prime/ticker")
        stats = await h.data("/v1/markets/text-prime/stats")

    assert ticker["market_id"] == ticker["symbol"] == "text-prime"
    assert ticker["last_price"] == "2.600"
    assert ticker["highest_bid"] == ticker["bid"] == "2.100"
    assert ticker["lowest_ask"] == ticker["ask"] == "2.600"
    assert ticker["last_trade_quantity"] == "1"
    assert isinstance(ticker["last_trade_timestamp"], str)
    assert ticker["volume_24h"] == "12"
    assert ticker["quote_volume_24h"] == "28.900"
    assert ticker["high_24h"] == "2.600" and ticker["low_24h"] == "2.100"
    assert ticker["price_change_24h"] == "0.100"
    assert ticker["price_change_percent_24h"] == "4.00"
    for key in ("high_24h", "low_24h", "quote_volume_24h", "price_change_24h"):
        assert isinstance(ticker[key], str)

    assert stats["open"] == "2.500" and stats["close"] == "2.600"
    assert stats["high"] == "2.600" and stats["low"] == "2.100"
    assert stats["volume"] == "12" and stats["quote_volume"] == "28.900"
    assert stats["num_trades"] == 5
    assert stats["volume_24h_tokens"] == "12000000"
    assert stats["current_price"] == "2.600"
    assert stats["price_change_percent_24h"] == "4.00"


async def test_ticker_of_a_quiet_market_keeps_prices_as_strings(tmp_path: Path) -> None:
    """No trade, no order: prices "0.000", volume "0", and no key that would have to be null."""
    async with running(tmp_path) as h:
        ticker = await h.data("/v1/markets/text-max/ticker")
        stats = await h.data("/v1/markets/text-max/stats")

    assert ticker["last_price"] == ticker["highest_bid"] == ticker["lowest_ask"] == "0.000"
    assert ticker["volume_24h"] == "0"
    assert ticker["price_change_24h"] == "0.000"
    assert ticker["price_change_percent_24h"] == "0.00"
    assert None not in ticker.values()
    for absent in ("high_24h", "low_24h", "last_trade_quantity", "last_trade_timestamp"):
        assert absent not in ticker
    assert stats["num_trades"] == 0 and stats["open"] is None


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/markets/nope",
        "/v1/markets/nope/orderbook",
        "/v1/markets/nope/trades",
        "/v1/markets/nope/ticker",
        "/v1/markets/nope/stats",
    ],
)
async def test_an_unknown_market_is_a_404(tmp_path: Path, path: str) -> None:
    async with running(tmp_path) as h:
        response = await h.get(path)

    assert_error(response, 404, "market_not_found")


async def test_an_unknown_instrument_is_a_404(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        by_id = await h.get("/v1/instruments/nope")
        by_symbol = await h.get("/v1/instruments/by-symbol/nope")

    assert_error(by_id, 404, "instrument_not_found")
    assert_error(by_symbol, 404, "instrument_not_found")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/markets/text-prime/orderbook", {"depth": "0"}),
        ("/v1/markets/text-prime/orderbook", {"depth": "-1"}),
        ("/v1/markets/text-prime/orderbook", {"depth": "1001"}),
        ("/v1/markets/text-prime/orderbook", {"depth": "abc"}),
        ("/v1/markets/text-prime/orderbook", {"depth": "99999999999999999999"}),
        ("/v1/markets/text-prime/trades", {"limit": "0"}),
        ("/v1/markets/text-prime/trades", {"limit": "101"}),
        ("/v1/markets/text-prime/trades", {"limit": "1.5"}),
        ("/v1/markets/text-prime/trades", {"page_size": "500"}),
        ("/v1/markets/text-prime/trades", {"next": "not-a-cursor!"}),
        ("/v1/markets/text-prime/trades", {"next": "bm90IGpzb24"}),
        ("/v1/markets/text-prime/trades", {"next": "WyJuIiwidGV4dCJd"}),  # ["n","text"]
        ("/v1/markets/text-prime/trades", {"prev": "WyJuIiwxXQ"}),  # a next cursor as prev
        ("/v1/markets/text-prime/trades", {"next": "WyJuIiwxXQ", "prev": "WyJwIiwxXQ"}),
        ("/v1/instruments", {"limit": "0"}),
        ("/v1/instruments", {"next": "WyJuIiwxXQ"}),  # an integer key where ids are strings
        ("/v1/markets", {"limit": "many"}),
    ],
)
async def test_a_bad_query_parameter_is_a_422(
    tmp_path: Path, path: str, params: dict[str, str]
) -> None:
    async with running(tmp_path) as h:
        response = await h.get(path, **params)

    assert_error(response, 422, "validation_error")


# -- restarts ---------------------------------------------------------------------------------


async def test_trades_ticker_and_book_survive_a_restart(tmp_path: Path) -> None:
    """A new service on the same SQLite file shows the same trades, ticker and book."""
    async with running(tmp_path) as h:
        await trade_a_little(h)
        before = {
            name: await h.data(f"/v1/markets/text-prime/{name}")
            for name in ("trades", "orderbook", "stats")
        }

    async with running(tmp_path) as h:
        after = {
            name: await h.data(f"/v1/markets/text-prime/{name}")
            for name in ("trades", "orderbook", "stats")
        }
        await h.submit(order("b1", "buy", 1, 2_600_000))
        newest = await h.data("/v1/markets/text-prime/trades", limit=1)

    assert after["trades"] == before["trades"]
    assert after["orderbook"]["bids"] == before["orderbook"]["bids"]
    assert after["orderbook"]["sequence"] == before["orderbook"]["sequence"]
    assert after["stats"]["num_trades"] == before["stats"]["num_trades"] == 5
    assert int(newest[0]["trade_id"]) == int(before["trades"][0]["trade_id"]) + 1


GRIDMARKET = Path(sys.executable).with_name("gridmarket")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served_home(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], str]]]:
    """A data dir and the URL of a `gridmarket serve` on it, started by the test itself."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMARKET_")}
    holder: dict[str, subprocess.Popen[str]] = {}

    def start() -> str:
        command = [str(GRIDMARKET), "serve", "--port", str(port), "--data-dir", str(home)]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        holder["process"] = process
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                assert process.stdout is not None
                pytest.fail(f"server exited: {process.stdout.read()}")
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail("server not ready")

    try:
        yield home, start
    finally:
        process = holder.get("process")
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


async def test_a_real_server_serves_trades_made_before_it_started(
    served_home: tuple[Path, Callable[[], str]],
) -> None:
    """Trades committed by an earlier run are backfilled from the store by `gridmarket serve`."""
    home, start = served_home
    async with running(home) as h:
        await trade_a_little(h)
        expected = await h.data("/v1/markets/text-prime/trades")

    url = start()
    trades = httpx.get(f"{url}/v1/markets/text-prime/trades").json()["data"]
    ticker = httpx.get(f"{url}/v1/markets/text-prime/ticker").json()["data"]
    book = httpx.get(f"{url}/v1/markets/text-prime/orderbook", params={"depth": 1}).json()
    missing = httpx.get(f"{url}/v1/markets/nope/ticker")

    assert trades == expected
    assert ticker["last_price"] == "2.600" and ticker["volume_24h"] == "12"
    assert book["data"]["bids"] == [{"price": "2.100", "quantity": "4", "order_count": 2}]
    assert_error(missing, 404, "market_not_found")


def test_trade_events_are_what_the_model_reads() -> None:
    """Guard: the read model keys on the core's `Trade` event type."""
    assert Trade._fields[:3] == ("seq", "ts_ms", "trade_id")

"""`gridmarket.client` against a real `gridmarket serve`: market data, /me, and the order
lifecycle through both `Client` and `AsyncClient`, signed for real and checked by the server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from live_server import Server

from gridmarket.auth.signing import generate_keypair
from gridmarket.client import (
    AsyncClient,
    AuthError,
    AutoModeRestricted,
    Client,
    Conflict,
    NotFound,
    ValidationError,
)

MARKET = "text-prime"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("client") / "home")
    try:
        yield running
    finally:
        running.kill()


def key_file(server: Server, where: Path, name: str, mode: str = "advanced") -> Path:
    """A new account's key file, exactly what `gridmarket admin create-account --json` prints."""
    return server.key_file(where / f"{name}.json", name, deposit_usd="1000", mode=mode)


@pytest.fixture(scope="module")
def alice_file(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return key_file(server, tmp_path_factory.mktemp("keys"), "alice")


@pytest.fixture
def alice(server: Server, alice_file: Path) -> Iterator[Client]:
    with Client(server.url, key_file=alice_file) as client:
        yield client
        client.cancel_all_orders()


def test_health_and_public_market_data_without_a_key(server: Server) -> None:
    with Client(server.url) as public:
        assert public.health().status == "ok"
        instruments = {i.instrument_id: i for i in public.instruments()}
        assert instruments[MARKET].price_tick == Decimal("0.001")
        assert instruments[MARKET].min_quantity == 1
        markets = {m.market_id: m for m in public.markets()}
        assert markets[MARKET].status == "active"
        assert public.market(MARKET) == markets[MARKET]
        assert public.instrument(MARKET) == instruments[MARKET]
        stats = public.stats(MARKET)
        assert stats.market_id == MARKET and stats.num_trades == 0
        assert public.public_trades(MARKET).items == ()
        ticker = public.ticker(MARKET)
        assert ticker.last_price is None and ticker.volume_24h == 0
        with pytest.raises(NotFound) as caught:
            public.orderbook("no-such-market")
        assert caught.value.code == "market_not_found"


def test_me_is_the_key_files_account(server: Server, alice: Client, alice_file: Path) -> None:
    me = alice.me()
    assert me.account_id == json.loads(alice_file.read_text())["account_id"]
    assert me.account_mode == "advanced" and "trading" in me.capabilities


def test_place_read_list_book_and_cancel(alice: Client) -> None:
    order = alice.place_order(MARKET, "buy", 3, price="1.250", client_order_id="live-1")
    assert (order.status, order.price, order.quantity) == ("active", Decimal("1.25"), 3)
    assert order.filled_quantity == 0 and order.client_order_id == "live-1"
    assert alice.get_order(order.order_id) == order
    listed = alice.list_orders(status="active", market_id=MARKET)
    assert order.order_id in [o.order_id for o in listed.items]

    book = alice.orderbook(MARKET, depth=5)
    level = next(level for level in book.bids if level.price == Decimal("1.25"))
    assert level.quantity >= 3 and type(level.quantity) is int
    assert alice.ticker(MARKET).highest_bid == book.best_bid

    alice.cancel_order(order.order_id)
    assert alice.get_order(order.order_id).status == "cancelled"
    with pytest.raises(Conflict) as caught:
        alice.cancel_order(order.order_id)
    assert caught.value.code == "order_not_open"


def test_a_repeated_client_order_id_in_the_same_second_is_the_same_order(alice: Client) -> None:
    # Identical bodies in one second would carry identical signatures and be refused as a
    # replay; the client steps the timestamp, and the server answers with the original order.
    first = alice.place_order(MARKET, "buy", 1, price="1.100", client_order_id="same")
    again = alice.place_order(MARKET, "buy", 1, price="1.100", client_order_id="same")
    assert again.order_id == first.order_id
    assert alice.cancel_all_orders(MARKET) >= 1


def test_iter_orders_walks_every_page(alice: Client) -> None:
    placed = [alice.place_order(MARKET, "buy", 1, price=f"1.0{i}") for i in range(5)]
    seen = [o.order_id for o in alice.iter_orders(status="active", page_size=2)]
    assert seen == [o.order_id for o in placed]  # the server lists oldest first
    assert len(list(alice.iter_orders(status="active", page_size=2, max_pages=1))) == 2
    assert alice.cancel_all_orders() == 5


def test_refusals_are_typed(server: Server, alice: Client, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        alice.get_order("999999")
    with pytest.raises(ValidationError) as caught:
        alice.place_order(MARKET, "buy", 1, price="1.0000001")
    assert caught.value.status_code == 422
    with pytest.raises(ValidationError) as caught:
        alice.place_order(MARKET, "buy", 100_000, price="999")
    assert caught.value.code == "insufficient_funds"

    easy = key_file(server, tmp_path, "easy", mode="easy")
    with Client(server.url, key_file=easy) as client, pytest.raises(AutoModeRestricted):
        client.place_order(MARKET, "buy", 1, price="1")

    seed, _ = generate_keypair()
    with Client(server.url, signing_key=seed) as stranger, pytest.raises(AuthError) as caught:
        stranger.me()
    assert caught.value.code == "unknown_fingerprint"


def test_one_account_cannot_see_anothers_orders(
    server: Server, alice: Client, tmp_path: Path
) -> None:
    order = alice.place_order(MARKET, "buy", 1, price="1.200")
    with Client(server.url, key_file=key_file(server, tmp_path, "bob")) as bob:
        with pytest.raises(NotFound):
            bob.get_order(order.order_id)
        with pytest.raises(NotFound):
            bob.cancel_order(order.order_id)
        assert list(bob.iter_orders()) == []
    assert alice.get_order(order.order_id).status == "active"


async def test_the_async_client_runs_the_same_lifecycle(server: Server, alice_file: Path) -> None:
    async with AsyncClient(server.url, key_file=alice_file) as client:
        assert (await client.health()).status == "ok"
        assert (await client.me()).account_mode == "advanced"
        order = await client.place_order(MARKET, "buy", 2, price=Decimal("1.300"))
        assert (await client.get_order(order.order_id)).price == Decimal("1.3")
        active = [o.order_id async for o in client.iter_orders(status="active", page_size=1)]
        assert order.order_id in active
        book = await client.orderbook(MARKET)
        assert Decimal("1.3") in [level.price for level in book.bids]
        await client.cancel_order(order.order_id)
        assert (await client.get_order(order.order_id)).status == "cancelled"
        assert await client.cancel_all_orders() == 0

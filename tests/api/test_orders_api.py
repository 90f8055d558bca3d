"""Signed order routes on a real server: Ed25519 auth, replay, isolation, placing and cancelling."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from live_server import Server

from gridmarket.adapters import registry
from gridmarket.adapters.registry import AccountRecord
from gridmarket.api import orders
from gridmarket.api.app import create_app
from gridmarket.api.signed import KeyCache, KeyCacheEntry
from gridmarket.auth.replay import ReplayGuard
from gridmarket.auth.signing import Signer, generate_keypair
from gridmarket.core.ids import AccountId
from gridmarket.service.accounts import open_account
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings

MARKET = "text-prime"


class Trader:
    """An account's signing key, sending signed requests the way The Grid's client does."""

    def __init__(self, server: Server, account_id: str, signer: Signer) -> None:
        self.server = server
        self.account_id = account_id
        self.signer = signer
        self._signed: set[tuple[str, str, bytes, int]] = set()

    def signed(
        self, method: str, path: str, body: Any = None, *, timestamp_s: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        raw = b"" if body is None else json.dumps(body).encode()
        when = int(time.time()) if timestamp_s is None else timestamp_s
        if timestamp_s is None:
            # Two identical writes in one second carry one signature, which the replay guard
            # refuses (Ed25519 is deterministic): step back a second, as a slower client would.
            while (method, path, raw, when) in self._signed:
                when -= 1
        self._signed.add((method, path, raw, when))
        headers = self.signer.sign_request(method, path, raw, when)
        return raw, headers | {"Content-Type": "application/json"}

    def send(
        self, method: str, path: str, raw: bytes, headers: dict[str, str], query: str = ""
    ) -> httpx.Response:
        url = f"{self.server.url}{path}{query}"
        return httpx.request(method, url, content=raw, headers=headers, timeout=10)

    def call(
        self, method: str, path: str, body: Any = None, query: str = "", **kw: Any
    ) -> httpx.Response:
        raw, headers = self.signed(method, path, body, **kw)
        return self.send(method, path, raw, headers, query)


def _trader(server: Server, *, mode: str = "advanced", deposit: str | None = "1000") -> Trader:
    body: dict[str, Any] = {"name": "t", "mode": mode}
    if deposit is not None:
        body["deposit_usd"] = deposit
    response = server.admin("POST", "/v1/admin/accounts", json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    signer = Signer(base64.b64decode(data["signing_key"]["private_key"]))
    assert signer.fingerprint == data["signing_key"]["fingerprint"]
    return Trader(server, data["account_id"], signer)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("orders") / "home")
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture(scope="module")
def alice(server: Server) -> Trader:
    return _trader(server)


def _buy(price: str = "1.000", quantity: Any = "2", **extra: Any) -> dict[str, Any]:
    return {
        "market_id": MARKET,
        "side": "buy",
        "type": "limit",
        "quantity": quantity,
        "price": price,
        "time_in_force": "gtc",
        **extra,
    }


def _error(response: httpx.Response) -> dict[str, Any]:
    errors: dict[str, Any] = response.json()["errors"]
    assert set(errors) == {"detail", "code", "message"}
    return errors


# -- authentication -----------------------------------------------------------------------------


def test_a_signed_limit_buy_rests_and_reads_back(alice: Trader) -> None:
    placed = alice.call("POST", "/v1/orders", _buy(client_order_id="first"))
    assert placed.status_code == 201, placed.text
    order = placed.json()["data"]
    assert isinstance(order["order_id"], str) and order["order_id"]
    assert order["status"] == "active"
    assert (order["side"], order["type"], order["market_id"]) == ("buy", "limit", MARKET)
    assert (order["price"], order["quantity"], order["remaining_quantity"]) == ("1.000", "2", "2")
    assert order["filled_quantity"] == 0
    assert order["average_price"] is None and order["time_in_force"] == "gtc"
    assert order["client_order_id"] == "first" and order["post_only"] is False
    assert order["created_at"].endswith("Z") and order["updated_at"].endswith("Z")

    got = alice.call("GET", f"/v1/orders/{order['order_id']}")
    assert got.status_code == 200
    assert got.json()["data"] == order


def test_bad_signature_is_401(alice: Trader) -> None:
    raw, headers = alice.signed("POST", "/v1/orders", _buy())
    signature = bytearray(base64.b64decode(headers["x-thegrid-signature"]))
    signature[0] ^= 1
    headers["x-thegrid-signature"] = base64.b64encode(bytes(signature)).decode()
    response = alice.send("POST", "/v1/orders", raw, headers)
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_signature"


def test_tampered_body_is_401(alice: Trader) -> None:
    raw, headers = alice.signed("POST", "/v1/orders", _buy(quantity="1"))
    tampered = raw.replace(b'"quantity": "1"', b'"quantity": "9"')
    assert tampered != raw
    response = alice.send("POST", "/v1/orders", tampered, headers)
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_signature"


def test_the_query_string_is_not_signed_but_the_path_is(alice: Trader) -> None:
    raw, headers = alice.signed("GET", "/v1/orders")
    assert alice.send("GET", "/v1/orders", raw, headers, "?limit=1").status_code == 200
    wrong_path = alice.send("GET", "/v1/orders/1", raw, headers)
    assert wrong_path.status_code == 401


@pytest.mark.parametrize(
    ("offset_s", "code"), [(-40, "expired_timestamp"), (40, "future_timestamp")]
)
def test_stale_and_future_timestamps_are_401(alice: Trader, offset_s: int, code: str) -> None:
    response = alice.call("GET", "/v1/orders", timestamp_s=int(time.time()) + offset_s)
    assert response.status_code == 401
    assert _error(response)["code"] == code


def test_unknown_fingerprint_is_401(server: Server) -> None:
    stranger = Trader(server, "nobody", Signer(generate_keypair()[0]))
    response = stranger.call("GET", "/v1/orders")
    assert response.status_code == 401
    assert _error(response)["code"] == "unknown_fingerprint"


@pytest.mark.parametrize(
    "missing", ["x-thegrid-signature", "x-thegrid-timestamp", "x-thegrid-fingerprint"]
)
def test_missing_headers_are_401_not_400(alice: Trader, missing: str) -> None:
    raw, headers = alice.signed("POST", "/v1/orders", _buy())
    del headers[missing]
    response = alice.send("POST", "/v1/orders", raw, headers)
    assert response.status_code == 401
    assert _error(response)["code"] == "missing_" + missing.rsplit("-", 1)[1]


def test_no_headers_at_all_on_a_bad_body_is_still_401(alice: Trader) -> None:
    response = httpx.post(f"{alice.server.url}/v1/orders", content=b"{", timeout=10)
    assert response.status_code == 401


def test_a_replayed_post_is_401_even_with_the_same_client_order_id(alice: Trader) -> None:
    raw, headers = alice.signed("POST", "/v1/orders", _buy(client_order_id="replay-me"))
    first = alice.send("POST", "/v1/orders", raw, headers)
    assert first.status_code == 201, first.text
    again = alice.send("POST", "/v1/orders", raw, headers)
    assert again.status_code == 401
    assert _error(again)["code"] == "replayed_request"


def test_a_replayed_read_is_allowed(alice: Trader) -> None:
    raw, headers = alice.signed("GET", "/v1/orders")
    assert alice.send("GET", "/v1/orders", raw, headers).status_code == 200
    assert alice.send("GET", "/v1/orders", raw, headers).status_code == 200


# -- placing ------------------------------------------------------------------------------------


def test_a_repeated_client_order_id_returns_the_original_and_a_changed_one_conflicts(
    alice: Trader,
) -> None:
    first = alice.call("POST", "/v1/orders", _buy(client_order_id="idem-1"))
    assert first.status_code == 201
    second = alice.call("POST", "/v1/orders", _buy(client_order_id="idem-1"))
    assert second.status_code == 200
    assert second.json()["data"] == first.json()["data"]
    changed = alice.call("POST", "/v1/orders", _buy(price="1.001", client_order_id="idem-1"))
    assert changed.status_code == 422
    assert _error(changed)["code"] == "client_order_id_conflict"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_buy() | {"side": "long"}, "validation_error"),
        (_buy(quantity="1.5"), "validation_error"),
        (_buy(quantity=1.5), "validation_error"),
        (_buy(quantity="0"), "validation_error"),
        (_buy(price="1.0000001"), "validation_error"),
        (_buy(price=1.0), "validation_error"),
        (_buy(reduce_only=False), "validation_error"),
        (_buy(client_order_id="x" * 65), "validation_error"),
        (_buy() | {"type": "stop", "stop_price": "1.000"}, "unsupported_order_type"),
        (_buy() | {"type": "stop_limit"}, "unsupported_order_type"),
        (_buy(time_in_force="day"), "unsupported_time_in_force"),
        (_buy(price="1.0005"), "price_off_tick"),
        (_buy(market_id="no-such-market"), "unknown_instrument"),
        (_buy(price="1000.000", quantity="100"), "insufficient_funds"),
        (_buy() | {"side": "sell"}, "insufficient_units"),
    ],
)
def test_bad_orders_are_422_with_a_code(alice: Trader, body: dict[str, Any], code: str) -> None:
    response = alice.call("POST", "/v1/orders", body)
    assert response.status_code == 422, response.text
    assert _error(response)["code"] == code


def test_stop_orders_say_they_are_not_supported(alice: Trader) -> None:
    response = alice.call("POST", "/v1/orders", _buy() | {"type": "stop"})
    assert "not supported" in _error(response)["message"]


def test_an_integer_quantity_is_accepted(alice: Trader) -> None:
    response = alice.call("POST", "/v1/orders", _buy(quantity=3))
    assert response.status_code == 201
    assert response.json()["data"]["quantity"] == "3"


def test_a_market_buy_on_an_empty_book_is_closed(alice: Trader) -> None:
    body = {"market_id": "code-max", "side": "buy", "type": "market", "quantity": "1"}
    response = alice.call("POST", "/v1/orders", body)
    assert response.status_code == 201, response.text
    order = response.json()["data"]
    assert order["status"] == "closed" and order["price"] is None
    assert order["closure_reason"] == "no_liquidity"
    again = alice.call("GET", f"/v1/orders/{order['order_id']}")  # kept on the order, not only
    assert again.json()["data"]["closure_reason"] == "no_liquidity"  # in the POST's answer


def test_easy_mode_accounts_may_read_but_not_trade(server: Server) -> None:
    easy = _trader(server, mode="easy")
    for method, path, body in (
        ("POST", "/v1/orders", _buy()),
        ("DELETE", "/v1/orders/1", None),
        ("DELETE", "/v1/orders", None),
        ("DELETE", f"/v1/markets/{MARKET}/orders", None),
    ):
        response = easy.call(method, path, body)
        assert response.status_code == 403, (method, path)
        errors = _error(response)
        assert errors["detail"] == errors["code"] == "auto_mode_trading_restricted"
    assert easy.call("GET", "/v1/orders").status_code == 200


# -- isolation, listing, cancelling -------------------------------------------------------------


def test_another_account_can_neither_read_nor_cancel_an_order(
    server: Server, alice: Trader
) -> None:
    order_id = alice.call("POST", "/v1/orders", _buy()).json()["data"]["order_id"]
    bob = _trader(server)
    read = bob.call("GET", f"/v1/orders/{order_id}")
    assert read.status_code == 404 and _error(read)["code"] == "order_not_found"
    cancel = bob.call("DELETE", f"/v1/orders/{order_id}")
    assert cancel.status_code == 404
    assert bob.call("DELETE", "/v1/orders").json() == {"data": {"cancelled": 0}}
    listed = bob.call("GET", "/v1/orders").json()["data"]
    assert order_id not in {o["order_id"] for o in listed}
    assert alice.call("GET", f"/v1/orders/{order_id}").json()["data"]["status"] == "active"


def test_unknown_order_ids_are_404(alice: Trader) -> None:
    for order_id in ("999999999", "abc", "0"):
        assert alice.call("GET", f"/v1/orders/{order_id}").status_code == 404
        assert alice.call("DELETE", f"/v1/orders/{order_id}").status_code == 404


def test_cancel_is_exactly_204_then_409(server: Server) -> None:
    carol = _trader(server)
    order_id = carol.call("POST", "/v1/orders", _buy()).json()["data"]["order_id"]
    cancelled = carol.call("DELETE", f"/v1/orders/{order_id}")
    assert cancelled.status_code == 204 and cancelled.content == b""
    assert carol.call("GET", f"/v1/orders/{order_id}").json()["data"]["status"] == "cancelled"
    again = carol.call("DELETE", f"/v1/orders/{order_id}")
    assert again.status_code == 409 and _error(again)["code"] == "order_not_open"


def test_list_is_oldest_first_with_active_filter_and_paging(server: Server) -> None:
    dave = _trader(server)
    ids = [
        dave.call("POST", "/v1/orders", _buy(price=f"1.00{i}")).json()["data"]["order_id"]
        for i in range(4)
    ]
    assert dave.call("DELETE", f"/v1/orders/{ids[1]}").status_code == 204

    listed = dave.call("GET", "/v1/orders")
    assert listed.status_code == 200
    assert [o["order_id"] for o in listed.json()["data"]] == ids
    assert listed.json()["paging"]["has_more"] is False

    active = dave.call("GET", "/v1/orders", query="?status=active").json()["data"]
    assert [o["order_id"] for o in active] == [ids[0], ids[2], ids[3]]
    cancelled = dave.call("GET", "/v1/orders", query="?status=cancelled").json()["data"]
    assert [o["order_id"] for o in cancelled] == [ids[1]]
    # The Grid's client sends filters in its flop dialect, brackets percent-encoded.
    flop = "?flop%5Bfilters%5D%5B0%5D%5Bfield%5D=status&flop%5Bfilters%5D%5B0%5D%5Bvalue%5D=active"
    via_flop = dave.call("GET", "/v1/orders", query=flop).json()["data"]
    assert [o["order_id"] for o in via_flop] == [ids[0], ids[2], ids[3]]
    other_market = dave.call("GET", "/v1/orders", query="?market_id=code-max").json()["data"]
    assert other_market == []

    first = dave.call("GET", "/v1/orders", query="?limit=3").json()
    assert [o["order_id"] for o in first["data"]] == ids[:3]
    assert first["paging"]["has_more"] is True
    cursor = first["paging"]["next_cursor"]
    rest = dave.call("GET", "/v1/orders", query=f"?limit=3&next={cursor}").json()
    assert [o["order_id"] for o in rest["data"]] == [ids[3]]

    for query in ("?limit=0", "?limit=101", "?limit=x", "?next=garbage!"):
        response = dave.call("GET", "/v1/orders", query=query)
        assert response.status_code == 422, query


def test_cancel_all_counts_and_per_market(server: Server) -> None:
    erin = _trader(server)
    for market in (MARKET, MARKET, "code-prime"):
        assert erin.call("POST", "/v1/orders", _buy(market_id=market)).status_code == 201
    one_market = erin.call("DELETE", "/v1/markets/code-prime/orders")
    assert one_market.status_code == 200
    assert one_market.json() == {"data": {"cancelled": 1}}
    everything = erin.call("DELETE", "/v1/orders")
    assert everything.status_code == 200
    assert everything.json() == {"data": {"cancelled": 2}}
    assert erin.call("DELETE", "/v1/orders").json() == {"data": {"cancelled": 0}}
    assert erin.call("GET", "/v1/orders", query="?status=active").json()["data"] == []
    unknown = erin.call("DELETE", "/v1/markets/no-such-market/orders")
    assert unknown.status_code == 404 and _error(unknown)["code"] == "market_not_found"


def test_the_path_is_verified_as_sent_still_percent_encoded(alice: Trader) -> None:
    as_sent = alice.call("GET", "/v1/orders/%31")
    assert as_sent.status_code == 404  # authenticated; order 1 is not alice's
    raw, headers = alice.signed("GET", "/v1/orders/1")
    decoded = alice.send("GET", "/v1/orders/%31", raw, headers)
    assert decoded.status_code == 401 and _error(decoded)["code"] == "invalid_signature"


# -- in process: the replay guard's capacity and key revocation ---------------------------------


@asynccontextmanager
async def _in_process(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = Settings.resolve(data_dir=tmp_path, environ={})

    def service_factory(settings: Settings) -> MarketService:
        return MarketService.from_url(settings.database_url, tune_gc=False)

    app = create_app(settings, service_factory=service_factory)
    app.include_router(orders.router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gm") as client:
            yield app, client


async def _signed_account(app: FastAPI) -> tuple[str, Signer]:
    opened = await open_account(app.state.market, name="n", is_supplier=False, mode="advanced")
    return opened.account_id, Signer(base64.b64decode(opened.private_key))


async def test_a_full_replay_guard_is_503_with_retry_after(tmp_path: Path) -> None:
    async with _in_process(tmp_path) as (app, client):
        _, signer = await _signed_account(app)
        app.state.replay_guard = ReplayGuard(max_entries=1)
        now = int(time.time())
        first = signer.sign_request("DELETE", "/v1/orders", b"", now)
        assert (await client.delete("/v1/orders", headers=first)).status_code == 200
        second = signer.sign_request("DELETE", "/v1/orders", b"", now - 1)
        response = await client.delete("/v1/orders", headers=second)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["errors"]["code"] == "replay_guard_full"
        # Reads are not guarded, so they still pass.
        read = signer.sign_request("GET", "/v1/orders", b"", now)
        assert (await client.get("/v1/orders", headers=read)).status_code == 200


async def test_a_revoked_key_is_refused_once_its_cache_entry_expires(tmp_path: Path) -> None:
    async with _in_process(tmp_path) as (app, client):
        _, signer = await _signed_account(app)
        app.state.signing_key_cache = KeyCache(ttl_s=3600)
        now = int(time.time())
        headers = signer.sign_request("GET", "/v1/orders", b"", now)
        assert (await client.get("/v1/orders", headers=headers)).status_code == 200
        engine = app.state.market.store.engine
        assert registry.revoke_signing_key(engine, signer.fingerprint, now * 1000)
        # Still cached: the revocation takes effect when the entry expires.
        assert (await client.get("/v1/orders", headers=headers)).status_code == 200
        app.state.signing_key_cache = KeyCache(ttl_s=3600)  # as if the TTL had passed
        response = await client.get("/v1/orders", headers=headers)
        assert response.status_code == 401
        assert response.json()["errors"]["code"] == "unknown_fingerprint"


def test_the_key_cache_expires_and_stays_bounded() -> None:
    clock = [0.0]
    cache = KeyCache(ttl_s=5, max_entries=2, clock=lambda: clock[0])
    account = AccountRecord(AccountId("a"), "a", False, "advanced", 0)
    entry = KeyCacheEntry(account, b"k" * 32, False, 5.0)
    cache.put("f1", entry)
    assert cache.get("f1") == entry
    clock[0] = 5.0
    assert cache.get("f1") is None
    for name in ("f1", "f2", "f3"):
        cache.put(name, entry._replace(expires_at=100.0))
    assert len(cache) <= 2


def test_me_names_the_signing_account_its_mode_and_capabilities(
    server: Server, alice: Trader
) -> None:
    """`grid verify` signs GET /me and needs account_mode == "advanced" to go on."""
    response = alice.call("GET", "/v1/me")
    assert response.status_code == 200, response.text
    me = response.json()["data"]
    assert me["user_id"] == me["account_id"] == alice.account_id
    assert me["account_mode"] == "advanced"
    assert me["capabilities"] == ["consumption", "trading"]
    assert me["email"] is None and me["created_at"].endswith("Z")

    easy = _trader(server, mode="easy").call("GET", "/v1/me").json()["data"]
    assert easy["account_mode"] == "easy" and easy["capabilities"] == ["consumption"]

    unsigned = httpx.get(f"{server.url}/v1/me", timeout=10)
    assert unsigned.status_code == 401

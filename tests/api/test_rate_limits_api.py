"""Rate limits on a real server: x-ratelimit-* headers, 429s that change nothing, per-key budgets.

The server runs with tight limits from the environment (which also proves the env settings):
20 signed requests per key per hour (a token every 3 minutes, so no refill during a test), and
order placements per key and market of 3 a minute (a token every 20 s) with a burst of 10.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from live_server import Server

from gridmarket.api.errors import EXCEPTION_HANDLERS
from gridmarket.api.ratelimit import RateLimited
from gridmarket.auth.ratelimit import Decision
from gridmarket.auth.signing import Signer

MARKET = "text-prime"
OTHER_MARKET = "text-local"
REQUESTS_PER_KEY = 20
ORDERS_PER_MINUTE = 3
LIMIT_ENV = {
    "GRIDMARKET_RATE_LIMIT_REQUESTS": str(REQUESTS_PER_KEY),
    "GRIDMARKET_RATE_LIMIT_WINDOW_S": "3600",
    "GRIDMARKET_ORDER_RATE_PER_SECOND": "10",
    "GRIDMARKET_ORDER_BURST": "10",
    "GRIDMARKET_ORDER_RATE_PER_MINUTE": str(ORDERS_PER_MINUTE),
}


class Key:
    """One account's signing key, signing each request afresh as The Grid's client does."""

    def __init__(self, server: Server, account_id: str, signer: Signer) -> None:
        self.server = server
        self.account_id = account_id
        self.signer = signer
        self._step = 0

    def call(self, method: str, path: str, body: Any = None, query: str = "") -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        # Each write signed at a distinct timestamp, so the replay guard never sees a repeat.
        self._step += 1
        headers = self.signer.sign_request(method, path, raw, int(time.time()) - self._step % 30)
        headers["Content-Type"] = "application/json"
        url = f"{self.server.url}{path}{query}"
        return httpx.request(method, url, content=raw, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in LIMIT_ENV.items():
            env.setenv(name, value)
        running = Server(tmp_path_factory.mktemp("ratelimits") / "home")
    try:
        yield running
    finally:
        running.kill()


def _key(server: Server) -> Key:
    body = {"name": "rl", "mode": "advanced", "deposit_usd": "1000"}
    response = server.admin("POST", "/v1/admin/accounts", json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return Key(
        server, data["account_id"], Signer(base64.b64decode(data["signing_key"]["private_key"]))
    )


def _order(client_order_id: str, market_id: str = MARKET) -> dict[str, Any]:
    return {
        "market_id": market_id,
        "side": "buy",
        "type": "limit",
        "quantity": "1",
        "price": "1.000",
        "client_order_id": client_order_id,
    }


def _remaining(response: httpx.Response) -> int:
    return int(response.headers["x-ratelimit-remaining"])


def _orders(key: Key) -> list[str]:
    listed = key.call("GET", "/v1/orders")
    assert listed.status_code == 200, listed.text
    return sorted(order["client_order_id"] for order in listed.json()["data"])


def test_signed_responses_carry_the_headers_and_remaining_counts_down(server: Server) -> None:
    key = _key(server)
    before = time.time()
    first = key.call("GET", "/v1/me")
    second = key.call("GET", "/v1/me")
    assert first.status_code == second.status_code == 200, first.text
    for response in (first, second):
        assert response.headers["x-ratelimit-limit"] == str(REQUESTS_PER_KEY)
        # Full again once the spent tokens are back: 3 minutes each, in whole unix seconds.
        reset_s = int(response.headers["x-ratelimit-reset"])
        assert before + 180 - 1 <= reset_s <= time.time() + 2 * 180 + 1
    assert _remaining(first) == REQUESTS_PER_KEY - 1
    assert _remaining(second) == REQUESTS_PER_KEY - 2
    not_found = key.call("GET", "/v1/orders/999999")  # errors of signed routes too
    assert not_found.status_code == 404
    assert _remaining(not_found) == REQUESTS_PER_KEY - 3


def test_unsigned_and_unauthenticated_requests_spend_no_budget(server: Server) -> None:
    key = _key(server)
    public = httpx.get(f"{server.url}/v1/markets", timeout=10)
    assert public.status_code == 200 and "x-ratelimit-limit" not in public.headers
    assert _remaining(key.call("GET", "/v1/me")) == REQUESTS_PER_KEY - 1
    headers = key.signer.sign_request("GET", "/v1/me", b"", int(time.time()))
    headers["x-thegrid-signature"] = base64.b64encode(b"\0" * 64).decode()
    for _ in range(5):
        refused = httpx.get(f"{server.url}/v1/me", headers=headers, timeout=10)
        assert refused.status_code == 401
        assert "x-ratelimit-remaining" not in refused.headers
    assert _remaining(key.call("GET", "/v1/me")) == REQUESTS_PER_KEY - 2


def test_past_the_burst_a_key_gets_429_with_retry_after_and_another_key_does_not(
    server: Server,
) -> None:
    a, b = _key(server), _key(server)
    for left in range(REQUESTS_PER_KEY - 1, -1, -1):
        response = a.call("GET", "/v1/me")
        assert response.status_code == 200 and _remaining(response) == left
    limited = a.call("GET", "/v1/me")
    assert limited.status_code == 429
    assert limited.json() == {
        "errors": {
            "detail": limited.json()["errors"]["detail"],
            "code": "rate_limited",
            "message": limited.json()["errors"]["detail"],
        }
    }
    retry_s = int(limited.headers["Retry-After"])
    assert 170 <= retry_s <= 180  # one token of 20 an hour
    assert limited.headers["x-ratelimit-retry-after"] == str(retry_s)
    assert _remaining(limited) == 0
    assert a.call("POST", "/v1/orders", _order("blocked")).status_code == 429
    fresh = b.call("GET", "/v1/me")
    assert fresh.status_code == 200 and _remaining(fresh) == REQUESTS_PER_KEY - 1


def test_orders_are_limited_per_key_and_market_and_a_429_places_nothing(server: Server) -> None:
    a, b = _key(server), _key(server)
    for i in range(ORDERS_PER_MINUTE):
        placed = a.call("POST", "/v1/orders", _order(f"o{i}"))
        assert placed.status_code == 201, placed.text
        assert _remaining(placed) == ORDERS_PER_MINUTE - 1 - i  # the order budget is tighter
    limited = a.call("POST", "/v1/orders", _order("over"))
    assert limited.status_code == 429, limited.text
    assert limited.json()["errors"]["code"] == "rate_limited"
    assert 15 <= int(limited.headers["Retry-After"]) <= 20  # one order of 3 a minute
    assert a.call("POST", "/v1/orders", _order("elsewhere", OTHER_MARKET)).status_code == 201
    assert b.call("POST", "/v1/orders", _order("b0")).status_code == 201
    assert _orders(a) == ["elsewhere", "o0", "o1", "o2"]


def test_account_limits_describe_the_settings_and_the_keys_budget(server: Server) -> None:
    key = _key(server)
    fresh = key.call("GET", "/v1/account/limits", query=f"?market_id={MARKET}")
    assert fresh.status_code == 200, fresh.text
    assert fresh.json() == {
        "data": {
            "market_id": MARKET,
            "order_rate_limits": {
                "scope": "user_market",
                "max_orders_per_second": 10,
                "max_orders_per_minute": ORDERS_PER_MINUTE,
                "burst_capacity": 10,
                "window_seconds": 60,
            },
            "response_headers": {"limit": "3", "remaining": "3", "retry_after": "0"},
        }
    }
    for i in range(ORDERS_PER_MINUTE):
        assert key.call("POST", "/v1/orders", _order(f"l{i}")).status_code == 201
    spent = key.call("GET", "/v1/account/limits", query=f"?market_id={MARKET}").json()["data"]
    headers = spent["response_headers"]
    assert headers["limit"] == "3" and headers["remaining"] == "0"
    assert 15 <= int(headers["retry_after"]) <= 20
    other = key.call("GET", "/v1/account/limits", query=f"?market_id={OTHER_MARKET}").json()
    assert other["data"]["response_headers"]["remaining"] == "3"


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?market_id=no-such-market", 404, "market_not_found"),
        ("?market_id=" + "x" * 5000, 404, "market_not_found"),
        ("", 422, "validation_error"),
        ("?market_id=", 422, "validation_error"),
    ],
)
def test_account_limits_refuse_unknown_and_missing_markets(
    server: Server, query: str, status: int, code: str
) -> None:
    key = _key(server)
    response = key.call("GET", "/v1/account/limits", query=query)
    assert response.status_code == status, response.text
    assert response.json()["errors"]["code"] == code


def test_account_limits_need_a_signature(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1/account/limits?market_id={MARKET}", timeout=10)
    assert response.status_code == 401


async def test_a_rate_limit_outside_a_signed_route_is_still_a_429_not_a_500() -> None:
    app = FastAPI(exception_handlers=EXCEPTION_HANDLERS)

    @app.get("/plain")
    async def plain() -> None:
        raise RateLimited(Decision(False, 5, 0, 0, retry_after_ms=1500))

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gm") as client:
        response = await client.get("/plain")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"  # 1.5 s, rounded up to whole seconds
    assert response.headers["x-ratelimit-retry-after"] == "2"

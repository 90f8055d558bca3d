"""Every refusal becomes the exception for its status, with The Grid's code and detail, and
only calls the server cannot have acted on are retried."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fake_grid import NOW_S, SEED, SERVER, Api, FakeGrid

from gridmarket.client import (
    AsyncClient,
    AuthError,
    AutoModeRestricted,
    Client,
    Conflict,
    Forbidden,
    GridmarketError,
    NotFound,
    RateLimited,
    ResponseFormatError,
    ServerError,
    TransportError,
    ValidationError,
)


def _envelope(code: str, detail: str, message: str | None = None) -> dict[str, object]:
    return {"errors": {"detail": detail, "code": code, "message": message or detail}}


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, ValidationError, "bad_request"),
        (422, ValidationError, "insufficient_funds"),
        (401, AuthError, "invalid_signature"),
        (403, Forbidden, "forbidden"),
        (404, NotFound, "order_not_found"),
        (409, Conflict, "order_not_open"),
        (500, ServerError, "internal_error"),
        (418, GridmarketError, "teapot"),
    ],
)
def test_each_status_maps_to_its_exception(
    grid: FakeGrid, api: Api, status: int, kind: type[GridmarketError], code: str
) -> None:
    grid.on("GET", "/v1/orders/1", status, _envelope(code, f"{code} happened"))
    with pytest.raises(kind) as caught:
        api("get_order", "1")
    assert type(caught.value) is kind
    assert (caught.value.status_code, caught.value.code) == (status, code)
    assert caught.value.detail == f"{code} happened"
    assert str(caught.value) == f"{code} happened ({code}, HTTP {status})"


def test_auto_mode_is_its_own_forbidden(grid: FakeGrid, api: Api) -> None:
    body = _envelope(
        "auto_mode_trading_restricted", "auto_mode_trading_restricted", "Account is in Auto Mode"
    )
    grid.on("POST", "/v1/orders", 403, body)
    with pytest.raises(AutoModeRestricted) as caught:
        api("place_order", "text-prime", "buy", 1, price="1")
    assert isinstance(caught.value, Forbidden)
    assert caught.value.code == "auto_mode_trading_restricted"
    assert caught.value.detail == "Account is in Auto Mode"


def test_429_carries_retry_after(grid: FakeGrid, api: Api) -> None:
    grid.on("GET", "/v1/me", 429, _envelope("rate_limited", "slow down"), **{"retry-after": "7"})
    with pytest.raises(RateLimited) as caught:
        api("me")
    assert caught.value.retry_after_s == 7
    assert len(grid.requests) == 1  # a 429 is the caller's to handle, not retried


def test_the_legacy_error_shape_is_read_too(grid: FakeGrid, api: Api) -> None:
    grid.on("GET", "/v1/me", 401, {"error": {"code": "AUTH_FAILED", "message": "bad key"}})
    with pytest.raises(AuthError) as caught:
        api("me")
    assert (caught.value.code, caught.value.detail) == ("AUTH_FAILED", "bad key")


def test_a_non_json_error_still_has_its_status(grid: FakeGrid, api: Api) -> None:
    grid.on("GET", "/v1/me", 502, b"<html>bad gateway</html>")
    with pytest.raises(ServerError) as caught:
        api("me")
    assert caught.value.status_code == 502 and caught.value.code is None


def test_a_success_without_the_envelope_is_a_format_error(grid: FakeGrid, api: Api) -> None:
    grid.on("GET", "/v1/health", body={"status": "ok"})
    with pytest.raises(ResponseFormatError, match="envelope"):
        api("health")


def test_a_missing_required_field_is_a_format_error(grid: FakeGrid, api: Api) -> None:
    grid.on("GET", "/v1/orders/1", body={"data": {"order_id": "1", "market_id": "m"}})
    with pytest.raises(ResponseFormatError, match=r"order\.side"):
        api("get_order", "1")


def test_a_503_is_retried_and_signed_afresh(grid: FakeGrid, api: Api) -> None:
    grid.on("GET", "/v1/me", 503, _envelope("replay_guard_full", "busy"), **{"retry-after": "0"})
    grid.on("GET", "/v1/me", 200, {"data": {"account_id": "acct_1"}})
    assert api("me").account_id == "acct_1"
    assert len(grid.requests) == 2
    assert all(v is not None for v in grid.verified)


def test_a_503_that_persists_surfaces_after_the_retries(grid: FakeGrid) -> None:
    grid.on("GET", "/v1/me", 503, _envelope("service_unavailable", "stopping"))
    transport = httpx.MockTransport(grid.handle)
    client = Client(
        SERVER, transport=transport, max_retries=1, signing_key=SEED, clock=lambda: NOW_S
    )
    with pytest.raises(ServerError, match="stopping"):
        client.me()
    assert len(grid.requests) == 2


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_an_unreachable_server_is_a_transport_error() -> None:
    client = Client(SERVER, transport=httpx.MockTransport(_refuse), max_retries=0)
    with pytest.raises(TransportError, match=r"cannot reach http://grid\.test"):
        client.health()


def test_an_unreachable_server_is_a_transport_error_async() -> None:
    client = AsyncClient(SERVER, transport=httpx.MockTransport(_refuse), max_retries=0)
    with pytest.raises(TransportError, match="cannot reach"):
        asyncio.run(client.health())


def test_a_timeout_is_not_retried(grid: FakeGrid) -> None:
    calls = []

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    client = Client(SERVER, transport=httpx.MockTransport(slow), signing_key=bytes(32))
    with pytest.raises(TransportError, match="ReadTimeout"):
        client.cancel_all_orders()
    assert len(calls) == 1  # the server may have acted: never resend a write blindly

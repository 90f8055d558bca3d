"""`api.direct`: the hot signed routes answer exactly as FastAPI's own dispatch answers them.

Two apps on two fresh stores, one with direct dispatch (the default) and one without, get the
same script of requests from accounts opened the same way; every answer must match in status,
body and the headers a client reads, once the values that differ by nature (account ids,
fingerprints, timestamps) are put aside.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from gridmarket.api import direct, me, orders
from gridmarket.api.app import create_app, include_flat
from gridmarket.api.signed import Signed, SignedRoute
from gridmarket.auth.signing import Signer
from gridmarket.core.ids import AccountId
from gridmarket.service.accounts import deposit, open_account
from gridmarket.service.errors import ServiceError
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings

# Low enough that the script reaches the per-key request limit (a 429 is part of the script).
REQUESTS_PER_WINDOW = 14
TIMES = re.compile(r'"\d{4}-\d\d-\d\dT[0-9:.]+Z"')
HEADERS_COMPARED = (
    "content-type",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-retry-after",
)


@asynccontextmanager
async def _app(
    tmp_path: Path, *, direct_routes: bool
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    tmp_path.mkdir()
    settings = Settings.resolve(
        data_dir=tmp_path, environ={}, rate_limits={"requests": REQUESTS_PER_WINDOW}
    )

    def service_factory(settings: Settings) -> MarketService:
        return MarketService.from_url(settings.database_url, tune_gc=False)

    app = create_app(settings, service_factory=service_factory, direct_routes=direct_routes)
    include_flat(app, orders.router)
    include_flat(app, me.router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gm") as client:
            yield app, client


async def _script(app: FastAPI, client: httpx.AsyncClient) -> list[tuple[Any, ...]]:
    """Run the script against one app; each answer as (status, normalised body, headers)."""
    market = app.state.market
    trader = await open_account(market, name="t", is_supplier=False, mode="advanced")
    easy = await open_account(market, name="e", is_supplier=False, mode="easy")
    await deposit(market, AccountId(trader.account_id), 50_000_000)
    secrets = {trader.account_id: "<trader>", easy.account_id: "<easy>"}
    secrets |= {trader.fingerprint: "<fp>", easy.fingerprint: "<fp-easy>"}
    signer = Signer(base64.b64decode(trader.private_key))
    easy_signer = Signer(base64.b64decode(easy.private_key))
    now = int(time.time())
    answers: list[tuple[Any, ...]] = []

    async def send(
        method: str, path: str, body: Any = None, *, by: Signer | None = signer, **tweak: Any
    ) -> None:
        raw = (
            b""
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        headers = by.sign_request(method, path, raw, tweak.get("at", now)) if by else {}
        if tweak.get("tamper"):
            raw += b" "
        response = await client.request(method, path, content=raw, headers=headers)
        text = response.text
        for secret, placeholder in secrets.items():
            text = text.replace(secret, placeholder)
        shown = {name: response.headers.get(name) for name in HEADERS_COMPARED}
        answers.append((method, path, response.status_code, TIMES.sub('"<t>"', text), shown))

    buy = {"market_id": "text-prime", "side": "buy", "type": "limit", "quantity": "2"}
    await send("GET", "/v1/me")
    await send("POST", "/v1/orders", buy | {"price": "1.5", "client_order_id": "a"})
    await send("POST", "/v1/orders", buy | {"price": "1.5", "client_order_id": "a"}, at=now - 1)
    await send("POST", "/v1/orders", buy | {"price": "1.6", "client_order_id": "a"}, at=now - 2)
    await send("POST", "/v1/orders", buy | {"price": "1.5"})  # the same signature: a replay
    await send("POST", "/v1/orders", buy | {"price": "x"}, at=now - 3)
    await send("POST", "/v1/orders", b"{not json", at=now - 4)
    await send("POST", "/v1/orders", buy | {"price": "999"}, at=now - 5)  # insufficient USD
    await send("POST", "/v1/orders", buy | {"price": "1.5"}, at=now - 6, tamper=True)
    await send("POST", "/v1/orders", buy | {"price": "1.5"}, by=None)
    await send("POST", "/v1/orders", buy | {"price": "1.5"}, by=easy_signer)  # 403, Easy Mode
    await send("GET", "/v1/orders")
    await send("GET", "/v1/orders/count")
    await send("DELETE", "/v1/orders")
    for _ in range(4):  # past the per-key request limit: 429s
        await send("GET", "/v1/me")
    return answers


async def test_direct_dispatch_answers_as_fastapi_does(tmp_path: Path) -> None:
    async with _app(tmp_path / "direct", direct_routes=True) as (app, client):
        direct_answers = await _script(app, client)
        assert {("POST", "/v1/orders"), ("GET", "/v1/me")} <= set(_direct_table(app))
    async with _app(tmp_path / "fastapi", direct_routes=False) as (app, client):
        fastapi_answers = await _script(app, client)
    statuses = [answer[2] for answer in direct_answers]
    # The script covers each kind of answer, so the comparison below means something.
    assert {200, 201, 401, 403, 422, 429} <= set(statuses), statuses
    assert direct_answers == fastapi_answers
    assert _direct_table(app) == {}


def _direct_table(app: FastAPI) -> dict[tuple[str, str], Any]:
    """The routes `app` dispatches directly (its middleware stack walked down to the router)."""
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, direct.DirectRoutes):
        layer = getattr(layer, "app", None)
    return {} if layer is None else dict(layer._table or {})


def _routed(endpoint: Any, path: str = "/x", method: str = "GET") -> Any:
    router = APIRouter(route_class=SignedRoute)
    router.add_api_route(path, endpoint, methods=[method], response_model=None)
    return router.routes[0]


async def _request_and_signed(request: Request, signed: Signed) -> Response:
    return Response()


async def _signed_only(signed: Signed) -> Response:
    return Response()


async def _request_only(request: Request) -> Response:
    return Response()


async def _with_query(signed: Signed, limit: int = 5) -> Response:
    return Response()


async def _returns_data(request: Request, signed: Signed) -> dict[str, int]:
    return {"serialised": 1}


@pytest.mark.parametrize(
    ("endpoint", "path", "qualifies"),
    [
        (_request_and_signed, "/x", True),
        (_signed_only, "/x", True),
        (_request_only, "/x", False),  # FastAPI would not authenticate it: neither may we
        (_with_query, "/x", False),  # a parameter FastAPI would parse and validate
        (_returns_data, "/x", False),  # an answer FastAPI would serialise
        (_request_and_signed, "/x/{item}", False),  # a path parameter
    ],
)
def test_which_routes_are_dispatched_directly(endpoint: Any, path: str, qualifies: bool) -> None:
    assert (direct._direct(_routed(endpoint, path)) is not None) is qualifies


@pytest.mark.parametrize(
    ("endpoint", "qualifies"),
    [(_request_only, True), (_signed_only, False), (_with_query, False)],
)
def test_plain_routes_qualify_with_the_request_alone(endpoint: Any, qualifies: bool) -> None:
    router = APIRouter()
    router.add_api_route("/x", endpoint, methods=["GET"], response_model=None)
    assert (direct._direct(router.routes[0]) is not None) is qualifies


def test_a_route_an_earlier_pattern_answers_is_left_to_fastapi() -> None:
    router = APIRouter(route_class=SignedRoute)
    router.add_api_route("/x/{item}", _request_and_signed, methods=["GET"], response_model=None)
    router.add_api_route("/x/count", _request_and_signed, methods=["GET"], response_model=None)
    router.add_api_route("/x/count", _request_and_signed, methods=["POST"], response_model=None)
    middleware = direct.DirectRoutes(_never_called, lambda: router.routes, dict)
    # GET /x/count is FastAPI's `/x/{item}`; POST /x/count has no earlier match.
    assert set(middleware._build()) == {("POST", "/x/count")}


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


def test_other_route_classes_and_router_dependencies_are_left_to_fastapi() -> None:
    class Custom(APIRoute):
        pass

    custom = APIRouter(route_class=Custom)
    custom.add_api_route("/x", _request_only, methods=["GET"], response_model=None)
    guarded = APIRouter(route_class=SignedRoute, dependencies=[Depends(lambda: None)])
    guarded.add_api_route("/x", _request_and_signed, methods=["GET"], response_model=None)
    assert direct._direct(custom.routes[0]) is None
    assert direct._direct(guarded.routes[0]) is None


async def _both_ways(
    tmp_path: Path, router: APIRouter, path: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, dict[str, str]]]:
    """The app with direct dispatch, then without, each with `router`'s routes, and the
    signed headers of a GET `path` by a new account of its market."""
    for direct_routes in (True, False):
        async with _app(tmp_path / str(direct_routes), direct_routes=direct_routes) as (
            app,
            client,
        ):
            include_flat(app, router)
            opened = await open_account(app.state.market, name="n", is_supplier=False, mode="easy")
            signer = Signer(base64.b64decode(opened.private_key))
            yield app, client, signer.sign_request("GET", path, b"", int(time.time()))


async def test_an_exception_with_an_app_handler_is_answered_by_that_handler(
    tmp_path: Path,
) -> None:
    router = APIRouter(route_class=SignedRoute)

    @router.get("/v1/failing", response_model=None)
    async def failing(signed: Signed) -> Response:
        raise ServiceError("the market service is stopping")

    answers = []
    async for _, client, headers in _both_ways(tmp_path, router, "/v1/failing"):
        response = await client.get("/v1/failing", headers=headers)
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 503 and answers[0][1]["errors"]["code"] == "service_unavailable"


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_bodies_over_the_limit_and_crashes_are_answered_as_fastapi_does(
    tmp_path: Path,
) -> None:
    """Direct dispatch wraps the whole stack, so it applies the body limit and answers a crash
    itself: the same 413s (declared and chunked) and the same 500 as the layers it skips."""
    router = APIRouter(route_class=SignedRoute)

    @router.get("/v1/crashing", response_model=None)
    async def crashing(signed: Signed) -> Response:
        raise RuntimeError("a bug")

    too_big = b"x" * (1_048_576 + 1)
    answers = []
    async for app, client, headers in _both_ways(tmp_path, router, "/v1/crashing"):
        direct_routes = not answers  # the first app dispatches directly
        quiet = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://gm",
        )
        with pytest.raises(RuntimeError, match="a bug"):  # raised again, for the log
            await client.get("/v1/crashing", headers=headers)
        async with quiet:
            crashed = await quiet.get("/v1/crashing", headers=headers)
            declared = await quiet.post("/v1/orders", content=too_big)
            chunked = await quiet.post("/v1/orders", content=_chunks(too_big, 65_536))
        answers.append(
            [
                (r.status_code, r.json(), r.headers.get("connection"))
                for r in (crashed, declared, chunked)
            ]
        )
        assert (("GET", "/v1/crashing") in _direct_table(app)) is direct_routes
    assert answers[0] == answers[1]
    (crash_status, crash_body, _), declared_answer, chunked_answer = answers[0]
    assert crash_status == 500 and crash_body["errors"]["code"] == "internal_error"
    assert declared_answer[0] == chunked_answer[0] == 413
    assert declared_answer[1]["errors"]["code"] == "request_too_large"

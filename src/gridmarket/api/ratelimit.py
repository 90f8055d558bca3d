"""Rate limits on the signed Trading API, as The Grid answers them (grid-api-notes.md §6.3).

`api.signed` calls `admit` once per request, after the signature and the replay guard and
before the route reads the body: unauthenticated requests (401) never spend a key's budget, and
a replayed capture is refused before it can. Budgets are per signing key (its fingerprint):

- every signed request takes one token from the key's bucket (`RateLimits.requests` per
  `window_s`);
- an order placement (POST /v1/orders, PUT /v1/orders/{id}) in a listed market also takes one
  from the key's buckets for that market (`orders_per_second`, burst `order_burst`, and
  `orders_per_minute`). An order for an unknown market is charged to the key only; the route
  refuses it anyway.

Every signed response (errors included) carries `x-ratelimit-limit`, `x-ratelimit-remaining`
and `x-ratelimit-reset` (unix seconds when the bucket is full again), from the tightest
bucket charged. Over a limit, the answer is a 429 in the error envelope, code `rate_limited`,
with `Retry-After` and `x-ratelimit-retry-after` in whole seconds (at least 1). A 429 charges
nothing and does nothing: the route never runs. (The replay guard has seen its signature by
then, so a retry must be signed afresh, which The Grid's client does on every attempt.)

The limiter lives in process memory (one per app, made from `app.state.settings` on first
use), bounded in keys (`auth.ratelimit`); restarting the server refills every bucket.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Message, Scope, Send

from gridmarket.api.errors import RATE_LIMITED_CODE, error_response
from gridmarket.auth.ratelimit import Decision, Rate, RateLimiter, RateLimiterConfig
from gridmarket.settings import RateLimits, Settings

SCOPE_KEY = "gridmarket.ratelimit"
_JSON_BODY_KEY = "gridmarket.json_body"
ORDER_WINDOW_S = 60
_ORDER_ID_TEXT = re.compile(r"[1-9][0-9]{0,17}")
_ORDER_PLACEMENTS = frozenset({("POST", "/v1/orders"), ("PUT", "/v1/orders/{order_id}")})


class RateLimited(HTTPException):
    """Over a limit: answered by `SignedRoute` with `.response()`.

    An HTTPException, so that a route which forgot `SignedRoute` still answers a 429 with
    `Retry-After` (through the app's HTTP error handler), never a 500.
    """

    def __init__(self, decision: Decision) -> None:
        seconds = retry_after_s(decision)
        headers = {"Retry-After": str(seconds), "x-ratelimit-retry-after": str(seconds)}
        super().__init__(429, f"rate limit exceeded: retry after {seconds} s", headers)
        self.decision = decision

    def response(self) -> Response:
        return error_response(429, self.detail, RATE_LIMITED_CODE, self.headers)


def config_for(limits: RateLimits) -> RateLimiterConfig:
    return RateLimiterConfig(
        requests=Rate(limits.requests, limits.requests, limits.window_s * 1000),
        order_burst=Rate(limits.order_burst, limits.orders_per_second, 1000),
        order_window=Rate(
            limits.orders_per_minute, limits.orders_per_minute, ORDER_WINDOW_S * 1000
        ),
    )


def limiter(request: Request) -> RateLimiter:
    """The app's limiter, made on first use from its settings (no await: exactly once)."""
    state = request.app.state
    existing = getattr(state, "rate_limiter", None)
    if isinstance(existing, RateLimiter):
        return existing
    settings = getattr(state, "settings", None)
    limits = settings.rate_limits if isinstance(settings, Settings) else RateLimits()
    made = RateLimiter(config_for(limits))
    state.rate_limiter = made
    return made


def retry_after_s(decision: Decision) -> int:
    return max(1, -(-decision.retry_after_ms // 1000))


def reset_s(decision: Decision) -> int:
    return -(-decision.reset_ms // 1000)


def _order_market(request: Request, body: bytes) -> str | None:
    """The listed market an order placement is for; None for anything else."""
    route = request.scope.get("route")
    if (request.method.upper(), getattr(route, "path", None)) not in _ORDER_PLACEMENTS:
        return None
    exchange = getattr(getattr(request.app.state.market, "sequencer", None), "exchange", None)
    if exchange is None:
        return None
    market_id = _body_market(request, body)
    if market_id is None and "order_id" in request.path_params:
        # Cancel-replace without a market_id: the market of the order it replaces.
        raw = str(request.path_params["order_id"])
        known = _ORDER_ID_TEXT.fullmatch(raw) is not None
        order = exchange.state.orders.get(int(raw)) if known else None
        market_id = None if order is None else str(order.instrument_id)
    return market_id if market_id in exchange.state.instruments else None


def json_body(request: Request, body: bytes) -> Any:
    """`body` parsed as JSON, once per request (kept in the scope for the route to reuse).

    Raises what `json.loads` raises; a failed parse is not kept, so the route sees the same.
    """
    cached = request.scope.get(_JSON_BODY_KEY)
    if cached is not None and cached[0] is body:
        return cached[1]
    parsed = json.loads(body)
    request.scope[_JSON_BODY_KEY] = (body, parsed)
    return parsed


def _body_market(request: Request, body: bytes) -> str | None:
    try:
        parsed: Any = json_body(request, body)
    except (ValueError, UnicodeDecodeError):
        return None
    value = parsed.get("market_id") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


def admit(request: Request, fingerprint: str, body: bytes) -> None:
    """Charge this authenticated request to its key; `RateLimited` when over a limit."""
    decision = limiter(request).admit(fingerprint, _order_market(request, body))
    request.scope[SCOPE_KEY] = decision
    if not decision.allowed:
        raise RateLimited(decision)


def headers_of(decision: Decision) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(decision.limit),
        "x-ratelimit-remaining": str(decision.remaining),
        "x-ratelimit-reset": str(reset_s(decision)),
    }


def _put_headers(raw: list[tuple[bytes, bytes]], decision: Decision) -> None:
    """Set the decision's `x-ratelimit-*` headers in a raw header list, replacing any there."""
    if any(name.startswith(b"x-ratelimit-") for name, _ in raw):
        headers = MutableHeaders(raw=raw)  # edits `raw` in place
        for name, value in headers_of(decision).items():
            headers[name] = value
        return
    raw.extend((name.encode(), value.encode()) for name, value in headers_of(decision).items())


def add_headers(response: Response, scope: Scope) -> None:
    """Put the `x-ratelimit-*` headers of the request's decision, if it has one, on `response`
    (what `with_headers` does on the way out, for a response built before it is sent)."""
    decision = scope.get(SCOPE_KEY)
    if isinstance(decision, Decision):
        _put_headers(response.raw_headers, decision)


def with_headers(scope: Scope, send: Send) -> Send:
    """`send`, adding the `x-ratelimit-*` headers of the request's decision, if it has one."""

    async def sending(message: Message) -> None:
        decision = scope.get(SCOPE_KEY)
        if message["type"] == "http.response.start" and isinstance(decision, Decision):
            raw = message["headers"] = list(message.get("headers", ()))
            _put_headers(raw, decision)
        await send(message)

    return sending

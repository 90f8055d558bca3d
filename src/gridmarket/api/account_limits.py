"""`GET /v1/account/limits?market_id=M`: the signing key's order rate limits in market M.

    {"data": {"market_id": "text-prime",
              "order_rate_limits": {"scope": "user_market", "max_orders_per_second": 50,
                                    "max_orders_per_minute": 3000, "burst_capacity": 100,
                                    "window_seconds": 60},
              "response_headers": {"limit": "100", "remaining": "100", "retry_after": "0"}}}

The shape The Grid's client validates (grid-client-contract.md line 249: numbers in
`order_rate_limits`, strings in `response_headers`). `order_rate_limits` are the server's
settings (`settings.RateLimits`); `response_headers` is the caller's key's budget in that
market right now, from its tightest bucket: `limit` its capacity (the burst capacity, unless
the minute's budget is the tighter), `remaining` the orders the key may place at once,
`retry_after` the whole seconds until it may place one more (0 when it may now). Asking
charges only the request itself (to the key's request budget), never an order.

`market_id` is required: without it (or empty) the answer is a 422 `validation_error`, since
the client always sends one and the answer describes one market. An unknown market is a 404
`market_not_found`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.responses import Response

from gridmarket.api import ratelimit
from gridmarket.api.errors import Problem
from gridmarket.api.responses import error
from gridmarket.api.signed import Signed, SignedRoute
from gridmarket.auth.signing import FINGERPRINT_HEADER
from gridmarket.core.ids import InstrumentId
from gridmarket.service.market import MarketService

MAX_MARKET_ID_CHARS = 200

router = APIRouter(prefix="/v1", tags=["account"], route_class=SignedRoute)


class OrderRateLimits(BaseModel):
    scope: Literal["user_market"]
    max_orders_per_second: int
    max_orders_per_minute: int
    burst_capacity: int
    window_seconds: int


class LimitHeaders(BaseModel):
    limit: str
    remaining: str
    retry_after: str


class AccountLimits(BaseModel):
    market_id: str
    order_rate_limits: OrderRateLimits
    response_headers: LimitHeaders


class AccountLimitsEnvelope(BaseModel):
    data: AccountLimits


@router.get(
    "/account/limits",
    response_model=None,
    responses={
        200: {"model": AccountLimitsEnvelope, "description": "The limits in the market."},
        404: error("No such market (`market_id`)."),
        422: error("`market_id` missing or empty."),
        503: error("The market service is not running."),
    },
)
async def account_limits(
    request: Request,
    signed: Signed,
    market_id: Annotated[
        str | None, Query(description="The market (its id).", examples=["text-prime"])
    ] = None,
) -> Response:
    """The signing key's effective order rate limits in `market_id`, and what is left of them."""
    try:
        market = request.app.state.market
        if not isinstance(market, MarketService):
            raise Problem(503, "service_unavailable", "the market service is not running")
        if not market_id:
            raise Problem(422, "validation_error", "market_id: required")
        instruments = market.sequencer.exchange.state.instruments
        if len(market_id) > MAX_MARKET_ID_CHARS or InstrumentId(market_id) not in instruments:
            shown = market_id[:MAX_MARKET_ID_CHARS]
            raise Problem(404, "market_not_found", f"market {shown!r} not found")
    except Problem as problem:
        return problem.response()
    limits = ratelimit.limiter(request)
    config = limits.config
    budget = limits.order_budget(request.headers[FINGERPRINT_HEADER], market_id)
    data = AccountLimits(
        market_id=market_id,
        order_rate_limits=OrderRateLimits(
            scope="user_market",
            max_orders_per_second=config.order_burst.refill_tokens,
            max_orders_per_minute=config.order_window.capacity,
            burst_capacity=config.order_burst.capacity,
            window_seconds=config.order_window.period_ms // 1000,
        ),
        response_headers=LimitHeaders(
            limit=str(budget.limit),
            remaining=str(budget.remaining),
            retry_after=str(0 if budget.allowed else ratelimit.retry_after_s(budget)),
        ),
    )
    return JSONResponse({"data": data.model_dump()})

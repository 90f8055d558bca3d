"""One's own fills on the signed Trading API (grid-api-notes §4.4).

    GET /v1/trades?market_id=&order_id=&start_datetime=&end_datetime=
                   &order_direction=asc|desc&limit=&next=|prev=
    GET /v1/trades/{trade_id}

Always the caller's own fills, never anyone else's: another account's trade id is a 404
`trade_not_found`, exactly like an id that does not exist. Filters and paging are
`api.listing`'s (plain or Flop): `market_id` (or `instrument_id`), `order_id`, `trade_id`,
`side`, and the execution time (`start_datetime` / `end_datetime`, `from_date` / `to_date`, or
a Flop filter on `execution_timestamp`); oldest first by default.

A Trade follows grid-client-contract.md §2: `trade_id` (and `id`), `market_id`,
`instrument_id`, `price`, `quantity`, `total_value` (price × quantity), `fee` (what the caller
paid on this fill) as decimal strings; `side` is the caller's side, `order_id` the caller's
order, `liquidity` `maker` or `taker`, `status` always `executed`, `execution_timestamp` and
`settlement_timestamp` (the same: a fill settles as it executes), `trading_account_id` the
caller's account.

Fills come from `service.own_trades`, fed by committed outcomes only and rebuilt from the
stored log on start; a read first waits until it holds every acknowledged command, so an
order's fills are listed as soon as its placement was answered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gridmarket.api import listing, wire
from gridmarket.api.errors import Problem
from gridmarket.api.signed import Signed, SignedRoute
from gridmarket.service.followed import caught_up_model, model_lifespan
from gridmarket.service.own_trades import Fill, OwnTrades

CURSOR_PREFIX = "t"
FILTER_FIELDS = frozenset({"market_id", "order_id", "trade_id", "side"})
FILTER_ALIASES = {"instrument_id": "market_id", "id": "trade_id"}
TIME_COLUMNS = ("execution_timestamp", "executed_at", "created_at")
_TRADE_ID_TEXT = re.compile(r"[1-9][0-9]{0,17}")


_lifespan = model_lifespan("own_trades", lambda market: OwnTrades())

router = APIRouter(prefix="/v1", tags=["trades"], route_class=SignedRoute, lifespan=_lifespan)


def trade_json(fill: Fill) -> dict[str, Any]:
    executed_at = wire.timestamp(fill.ts_ms)
    return {
        "trade_id": str(fill.trade_id),
        "id": str(fill.trade_id),
        "market_id": fill.instrument_id,
        "instrument_id": fill.instrument_id,
        "price": wire.usd(fill.price_usd_micros),
        "quantity": wire.units(fill.quantity_units),
        "total_value": wire.usd(fill.price_usd_micros * fill.quantity_units),
        "fee": wire.usd(fill.fee_usd_micros),
        "fee_currency": "USD",
        "side": fill.side,
        "liquidity": fill.liquidity,
        "order_id": str(fill.order_id),
        "trading_account_id": fill.account_id,
        "status": "executed",
        "execution_timestamp": executed_at,
        "settlement_timestamp": executed_at,
    }


async def _model(request: Request) -> OwnTrades:
    """The read model, once it holds every acknowledged command (read-your-writes)."""
    model = await caught_up_model(request.app.state, "own_trades", OwnTrades)
    if model is None:
        raise Problem(503, "service_unavailable", "the market service is not running")
    return model


def _matcher(filters: listing.Filters, fill_of: Callable[[int], Fill]) -> Callable[[int], bool]:
    equal = filters.equal
    markets, sides = equal.get("market_id"), equal.get("side")
    orders, trades = equal.get("order_id"), equal.get("trade_id")

    def keep(trade_id: int) -> bool:
        fill = fill_of(trade_id)
        return (
            (markets is None or fill.instrument_id in markets)
            and (sides is None or fill.side in sides)
            and (orders is None or str(fill.order_id) in orders)
            and (trades is None or str(trade_id) in trades)
        )

    return keep


@router.get("/trades", response_model=None)
async def list_trades(request: Request, signed: Signed) -> Response:
    """The caller's fills, oldest first by default, filtered and paged (module docstring)."""
    try:
        query = request.query_params
        paging = listing.parse_paging(query, CURSOR_PREFIX)
        filters = listing.parse_filters(
            query, FILTER_FIELDS, time_columns=TIME_COLUMNS, aliases=FILTER_ALIASES
        )
        model = await _model(request)
        account_id = signed.account_id
        ids = model.trade_ids(account_id)

        def fill_of(trade_id: int) -> Fill:
            fill = model.fill(account_id, trade_id)
            assert fill is not None
            return fill

        bounds = listing.time_range(ids, lambda i: fill_of(i).ts_ms, filters)
        chosen = listing.page(ids, bounds, _matcher(filters, fill_of), paging, CURSOR_PREFIX)
        data = [trade_json(fill_of(i)) for i in chosen.keys]
        return JSONResponse({"data": data, "paging": chosen.paging})
    except Problem as problem:
        return problem.response()


@router.get("/trades/{trade_id}", response_model=None)
async def get_trade(request: Request, trade_id: str, signed: Signed) -> Response:
    try:
        model = await _model(request)
        fill = None
        if _TRADE_ID_TEXT.fullmatch(trade_id) is not None:
            fill = model.fill(signed.account_id, int(trade_id))
        if fill is None:
            raise Problem(404, "trade_not_found", f"trade {trade_id!r} not found")
        return JSONResponse({"data": trade_json(fill)})
    except Problem as problem:
        return problem.response()

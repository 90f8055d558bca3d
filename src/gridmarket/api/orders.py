"""Orders on the signed Trading API: place, read, list and cancel one's own orders.

    POST   /v1/orders                    201 {"data": Order}  (200 for a repeated client_order_id)
    GET    /v1/orders?market_id=&side=&status=&type=&start_datetime=&end_datetime=
                      &order_direction=asc|desc&limit=&next=|prev=
    GET    /v1/orders/count              200 {"data": {"count": N, "by_market": [...]}}
    GET    /v1/orders/{id}
    PUT    /v1/orders/{id}               200 {"data": the NEW Order}  (cancel-replace)
    DELETE /v1/orders/{id}               204, no body
    DELETE /v1/orders                    200 {"data": {"cancelled": N}}
    DELETE /v1/markets/{id}/orders       200 {"data": {"cancelled": N}}

Every route is signed (`api.signed`); the replay guard runs before the body is read.
Order writes from an account in `easy` (Auto) mode are a 403 whose `errors.detail` is
`auto_mode_trading_restricted` (grid-client-contract.md line 77: the client looks for it in
`errors.detail`; grid-api-notes.md line 187: create, update and cancel; reads still work).

The body of POST /v1/orders takes exactly the keys The Grid's client sends
(grid-client-contract.md line 277): market_id, side, type, quantity, price, time_in_force,
client_order_id, post_only. Any other key is a 422; `stop`/`stop_limit` (and `stop_price`)
are a 422 `unsupported_order_type`, `day` a 422 `unsupported_time_in_force`. quantity is a
whole number, as a string or a JSON integer (the official guides send `10`, grid-api-notes.md
line 179); price is a decimal string, turned exactly into micro-USD here (more than 6
decimals is a 422 here; off the tick is the core's `price_off_tick`). A core refusal is a 422
whose code is the core's reason (`insufficient_funds`, `client_order_id_conflict`, ...).

PUT /v1/orders/{id} (The Grid's updateOrder, grid-client-contract.md line 278) takes
`{price?, quantity?, stop_price?, time_in_force?}` and is a cancel-replace: one core
`ReplaceOrder` command cancels the resting order (`closure_reason` `replaced`) and places a new
one with a **new order_id**, which loses time priority and matches like any new order (it may
trade at once if it now crosses). The answer is 200 with the new Order in `data`. Side, type,
time in force, post_only, auto-transfer and `client_order_id` carry over (the client order id
then names the new order). `quantity` is the new order's quantity, i.e. the new *remaining*
quantity: units already filled stay on the old order. An absent (or null) `price` or
`quantity` keeps the old value; at least one must be given. `stop_price` is a 422
`unsupported_order_type`; `time_in_force` may only repeat the order's own (gtc: only gtc orders
rest), anything else is a 422 `unsupported_time_in_force`. If the new order would be refused,
nothing changes and the answer is a 422 with the core's reason (`insufficient_funds`,
`price_off_tick`, `price_out_of_band`, ...); an unknown or another account's order is a 404
`order_not_found`; an order no longer open (filled, cancelled, closed) is a 409
`order_not_open`, as for DELETE.

GET /v1/orders filters and pages as `api.listing` describes: `market_id` (or `instrument_id`),
`side`, `status` (one or several; `active` and `open` both mean "not terminal": active or
partially_filled), `type`, `client_order_id`, the submission time (`start_datetime` /
`end_datetime`, `from_date` / `to_date`, or a Flop filter on `submitted_at`), plain or in The
Grid's Flop dialects. Oldest first by default (`order_direction=asc`, grid-api-notes §4.3).
GET /v1/orders/count counts the caller's open orders, with `by_market` (`[{market_id,
count}]`, markets with none left out) as `grid order cancel-all --market` reads it.

Orders are read from the live state (`exchange.state.orders`, which keeps every order ever
placed), synchronously between awaits, so a read sees whole commands. Listing uses a
per-account index of order ids kept in this module: it is caught up on each list call by
walking `state.orders` backwards from its newest entry to the last one indexed (ids are
sequence numbers, so the dict is in ascending id order): O(new orders) per call, no scan of
old orders. The `active` filter reads the account's open-order set instead.

Order objects follow grid-client-contract.md §2 (lines 97-121): ids and decimals as strings,
`price` always present (null for a market order), `filled_quantity` a JSON number (the
stricter sibling SDK requires it, line 387). `closure_reason` is the core's: why a closed order's
remainder was closed (`no_liquidity`, `immediate_or_cancel`, ...) or why a cancelled order was
cancelled (`requested`, `self_trade_prevention`, `sweep`); null while the order is live.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gridmarket.api import listing, wire
from gridmarket.api import write_docs as docs
from gridmarket.api.errors import Problem
from gridmarket.api.signed import Signed, SignedAccount, SignedRoute
from gridmarket.core.commands import CancelAllOrders, CancelOrder, PlaceOrder, ReplaceOrder
from gridmarket.core.events import (
    OrderAccepted,
    OrderAlreadyExists,
    OrderCancelled,
    OrderRejected,
    Rejected,
)
from gridmarket.core.exchange import Exchange, Outcome
from gridmarket.core.ids import AccountId, InstrumentId, OrderId
from gridmarket.core.orders import OPEN_STATUSES, Order
from gridmarket.core.reasons import RejectReason
from gridmarket.core.units import USD_MICROS
from gridmarket.service.market import MarketService

MAX_CLIENT_ORDER_ID_CHARS = 64
AUTO_MODE_CODE = "auto_mode_trading_restricted"
AUTO_MODE_MESSAGE = (
    "Account is in Auto Mode: order create, update and cancel are restricted; "
    "switch the account to Advanced mode to trade"
)

BODY_KEYS = frozenset(
    {
        "market_id",
        "side",
        "type",
        "quantity",
        "price",
        "time_in_force",
        "client_order_id",
        "post_only",
    }
)
_QUANTITY_TEXT = re.compile(r"[1-9][0-9]{0,11}")
_PRICE_TEXT = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{1,18})?")
_ORDER_ID_TEXT = re.compile(r"[1-9][0-9]{0,17}")
UPDATE_KEYS = frozenset({"price", "quantity", "stop_price", "time_in_force"})
CURSOR_PREFIX = "o"
#: Statuses that select the open orders (The Grid's client counts both as non-terminal).
OPEN_ALIASES = frozenset({"active", "open"})
FILTER_FIELDS = frozenset({"market_id", "side", "status", "type", "client_order_id"})
FILTER_ALIASES = {"instrument_id": "market_id", "order_type": "type"}
TIME_COLUMNS = ("submitted_at", "created_at", "inserted_at")

router = APIRouter(prefix="/v1", tags=["orders"], route_class=SignedRoute)


def _invalid(field: str, why: str, code: str = "validation_error") -> Problem:
    return Problem(422, code, f"{field}: {why}")


def _market(request: Request) -> MarketService:
    market = request.app.state.market
    if not isinstance(market, MarketService):
        raise Problem(503, "service_unavailable", "the market service is not running")
    return market


def _may_trade(signed: SignedAccount) -> None:
    if signed.mode != "advanced":
        # The client matches this code in `errors.detail` (contract line 77).
        raise Problem(403, AUTO_MODE_CODE, AUTO_MODE_MESSAGE, detail=AUTO_MODE_CODE)


# -- the Order object ----------------------------------------------------------------------------


def _average_price(order: Order) -> str | None:
    if order.filled_units == 0:
        return None
    # Exact to the micro-USD, half up: the notional is an exact sum of on-tick fills.
    micros, remainder = divmod(order.filled_notional_usd_micros, order.filled_units)
    if 2 * remainder >= order.filled_units:
        micros += 1
    return wire.usd(micros)


def order_json(order: Order) -> dict[str, Any]:
    """The Order object of grid-client-contract.md §2, strings where the client wants them."""
    price = None if order.price_usd_micros is None else wire.usd(order.price_usd_micros)
    average = _average_price(order)
    terminal = not order.is_open
    return {
        "order_id": str(order.order_id),
        "id": str(order.order_id),
        "market_id": order.instrument_id,
        "instrument_id": order.instrument_id,
        "side": order.side,
        "type": order.order_type,
        "status": order.status,
        "price": price,
        "quantity": wire.units(order.quantity_units),
        "filled_quantity": order.filled_units,
        "remaining_quantity": wire.units(order.remaining_units),
        "average_price": average,
        "average_fill_price": average,
        "fee": wire.usd(order.fee_paid_usd_micros),
        "time_in_force": order.time_in_force,
        "client_order_id": order.client_order_id,
        "post_only": order.post_only,
        "closure_reason": order.closure_reason,
        "closed_at": wire.timestamp(order.updated_ms) if terminal else None,
        "submitted_at": wire.timestamp(order.created_ms),
        "created_at": wire.timestamp(order.created_ms),
        "updated_at": wire.timestamp(order.updated_ms),
    }


def _own_order(exchange: Exchange, account_id: AccountId, raw_id: str) -> Order:
    """The caller's order `raw_id`; a 404 for an unknown id and for another account's."""
    if _ORDER_ID_TEXT.fullmatch(raw_id) is not None:
        order = exchange.state.orders.get(int(raw_id))
        if order is not None and order.account_id == account_id:
            return order
    raise Problem(404, "order_not_found", f"order {raw_id!r} not found")


# -- placing ------------------------------------------------------------------------------------


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem(422, "validation_error", "body: must be a JSON object") from None
    if not isinstance(body, dict):
        raise Problem(422, "validation_error", "body: must be a JSON object")
    if body.get("type") in ("stop", "stop_limit") or "stop_price" in body:
        raise _invalid(
            "type",
            "stop and stop_limit orders are not supported; use limit or market",
            "unsupported_order_type",
        )
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise _invalid(unknown[0], "unknown field; allowed: " + ", ".join(sorted(BODY_KEYS)))
    return body


def _quantity(value: object) -> int:
    if type(value) is int and 0 < value < 10**12:
        return value
    if isinstance(value, str) and _QUANTITY_TEXT.fullmatch(value):
        return int(value)
    raise _invalid("quantity", 'must be a positive whole number of units, such as "10"')


def _price(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str) or _PRICE_TEXT.fullmatch(value) is None:
        raise _invalid("price", 'must be a decimal string of USD per unit, such as "2.50"')
    try:
        micros = Decimal(value) * USD_MICROS
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
        raise _invalid("price", "must be a decimal string") from None
    if micros != micros.to_integral_value():
        raise _invalid("price", "at most 6 decimals (the micro-dollar)")
    return int(micros)


def _choice(body: dict[str, Any], field: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = body.get(field, default)
    if value not in allowed:
        raise _invalid(field, "must be one of " + ", ".join(allowed))
    assert isinstance(value, str)
    return value


def _place_command(account_id: AccountId, body: dict[str, Any]) -> PlaceOrder:
    market_id = body.get("market_id")
    if not isinstance(market_id, str) or not market_id:
        raise _invalid("market_id", "required, a string")
    side = _choice(body, "side", ("buy", "sell"), None)
    order_type = _choice(body, "type", ("limit", "market"), None)
    if "quantity" not in body:
        raise _invalid("quantity", "required")
    quantity = _quantity(body["quantity"])
    price = _price(body.get("price"))
    if body.get("time_in_force") == "day":
        raise _invalid("time_in_force", "day orders are not supported", "unsupported_time_in_force")
    time_in_force = _choice(body, "time_in_force", ("gtc", "ioc", "fok"), "gtc")
    client_order_id = body.get("client_order_id")
    if client_order_id is not None and (
        not isinstance(client_order_id, str)
        or not 0 < len(client_order_id) <= MAX_CLIENT_ORDER_ID_CHARS
    ):
        raise _invalid("client_order_id", f"a string of 1 to {MAX_CLIENT_ORDER_ID_CHARS} chars")
    post_only = body.get("post_only", False)
    if type(post_only) is not bool:
        raise _invalid("post_only", "must be true or false")
    return PlaceOrder(
        account_id,
        InstrumentId(market_id),
        "buy" if side == "buy" else "sell",
        "limit" if order_type == "limit" else "market",
        quantity,
        price,
        "gtc" if time_in_force == "gtc" else ("ioc" if time_in_force == "ioc" else "fok"),
        post_only,
        client_order_id,
    )


def _rejection(outcome: Outcome) -> str | None:
    for event in outcome.events:
        if isinstance(event, OrderRejected | Rejected):
            return event.reason
    return None


@router.post(
    "/orders",
    status_code=201,
    response_model=None,
    openapi_extra=docs.request_body(docs.PlaceOrderBody),
    responses=docs.PLACE_ORDER_RESPONSES,
)
async def place_order(request: Request, signed: Signed) -> Response:
    try:
        market = _market(request)
        _may_trade(signed)
        command = _place_command(signed.account_id, _parse_body(await request.body()))
        outcome = await market.submit(command)
        orders = market.sequencer.exchange.state.orders
        for event in outcome.events:
            if isinstance(event, OrderAlreadyExists):
                return JSONResponse({"data": order_json(orders[event.order_id])}, 200)
            if isinstance(event, OrderAccepted):
                return JSONResponse({"data": order_json(orders[event.order_id])}, 201)
        reason = _rejection(outcome) or "rejected"
        raise Problem(422, reason, f"order refused: {reason}")
    except Problem as problem:
        return problem.response()


# -- reading ------------------------------------------------------------------------------------


class _OrderIndex:
    """Order ids per account, ascending, caught up from `state.orders` on each use."""

    def __init__(self) -> None:
        self.by_account: dict[str, list[int]] = {}
        self.last_id = 0

    def catch_up(self, orders: dict[int, Order]) -> None:
        fresh: list[Order] = []
        for order_id in reversed(orders):
            if order_id <= self.last_id:
                break
            fresh.append(orders[order_id])
        for order in reversed(fresh):
            self.by_account.setdefault(order.account_id, []).append(order.order_id)
        if fresh:
            self.last_id = fresh[0].order_id


def _index(request: Request) -> _OrderIndex:
    state = request.app.state
    if getattr(state, "order_index", None) is None:
        state.order_index = _OrderIndex()
    index: _OrderIndex = state.order_index
    return index


def _matcher(filters: listing.Filters, orders: dict[int, Order]) -> Any:
    equal = filters.equal
    statuses = equal.get("status")
    wanted = None
    if statuses is not None:
        wanted = (statuses - OPEN_ALIASES) | (OPEN_STATUSES if statuses & OPEN_ALIASES else set())
    markets, sides, types = equal.get("market_id"), equal.get("side"), equal.get("type")
    client_ids = equal.get("client_order_id")

    def keep(order_id: int) -> bool:
        order = orders[order_id]
        return (
            (wanted is None or order.status in wanted)
            and (markets is None or order.instrument_id in markets)
            and (sides is None or order.side in sides)
            and (types is None or order.order_type in types)
            and (client_ids is None or order.client_order_id in client_ids)
        )

    return keep


@router.get("/orders", response_model=None, responses=docs.LIST_ORDERS_RESPONSES)
async def list_orders(request: Request, signed: Signed) -> Response:
    """Own orders, oldest first by default, filtered and paged (module docstring)."""
    try:
        market = _market(request)
        query = request.query_params
        paging = listing.parse_paging(query, CURSOR_PREFIX)
        filters = listing.parse_filters(
            query, FILTER_FIELDS, time_columns=TIME_COLUMNS, aliases=FILTER_ALIASES
        )
        state = market.sequencer.exchange.state
        statuses = filters.equal.get("status")
        ids: list[int]
        if statuses is not None and statuses <= OPEN_ALIASES | OPEN_STATUSES:
            # Only open orders wanted: the account's open set (at most the open-order limit).
            account = state.accounts.get(signed.account_id)
            ids = [] if account is None else list(account.open_order_ids)
        else:
            index = _index(request)
            index.catch_up(state.orders)
            ids = index.by_account.get(signed.account_id, [])
        orders = state.orders
        bounds = listing.time_range(ids, lambda i: orders[i].created_ms, filters)
        chosen = listing.page(ids, bounds, _matcher(filters, orders), paging, CURSOR_PREFIX)
        data = [order_json(orders[i]) for i in chosen.keys]
        return JSONResponse({"data": data, "paging": chosen.paging})
    except Problem as problem:
        return problem.response()


@router.get("/orders/count", response_model=None, responses=docs.COUNT_ORDERS_RESPONSES)
async def count_orders(request: Request, signed: Signed) -> Response:
    """The caller's open orders: `count` and `by_market` (JSON numbers, contract line 252)."""
    try:
        state = _market(request).sequencer.exchange.state
        account = state.accounts.get(signed.account_id)
        by_market: dict[str, int] = {}
        for order_id in () if account is None else account.open_order_ids:
            instrument_id = state.orders[order_id].instrument_id
            by_market[instrument_id] = by_market.get(instrument_id, 0) + 1
        rows = [{"market_id": m, "count": n} for m, n in sorted(by_market.items())]
        return JSONResponse({"data": {"count": sum(by_market.values()), "by_market": rows}})
    except Problem as problem:
        return problem.response()


@router.get("/orders/{order_id}", response_model=None, responses=docs.GET_ORDER_RESPONSES)
async def get_order(request: Request, order_id: str, signed: Signed) -> Response:
    try:
        market = _market(request)
        order = _own_order(market.sequencer.exchange, signed.account_id, order_id)
        return JSONResponse({"data": order_json(order)})
    except Problem as problem:
        return problem.response()


# -- replacing ----------------------------------------------------------------------------------


def _update_body(raw: bytes) -> tuple[int | None, int | None, str | None]:
    """(price micro-USD, quantity units, time_in_force) of a PUT body; None when absent."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem(422, "validation_error", "body: must be a JSON object") from None
    if not isinstance(body, dict):
        raise Problem(422, "validation_error", "body: must be a JSON object")
    unknown = sorted(set(body) - UPDATE_KEYS)
    if unknown:
        raise _invalid(unknown[0], "unknown field; allowed: " + ", ".join(sorted(UPDATE_KEYS)))
    if body.get("stop_price") is not None:
        raise _invalid("stop_price", "stop orders are not supported", "unsupported_order_type")
    price = _price(body.get("price"))
    quantity = None if body.get("quantity") is None else _quantity(body["quantity"])
    time_in_force = body.get("time_in_force")
    if time_in_force is not None and not isinstance(time_in_force, str):
        raise _invalid("time_in_force", "must be a string")
    if price is None and quantity is None:
        raise _invalid("body", "give a new price and/or quantity")
    return price, quantity, time_in_force


@router.put(
    "/orders/{order_id}",
    response_model=None,
    openapi_extra=docs.request_body(docs.UpdateOrderBody),
    responses=docs.UPDATE_ORDER_RESPONSES,
)
async def replace_order(request: Request, order_id: str, signed: Signed) -> Response:
    """Cancel-replace: 200 with the new Order (module docstring)."""
    try:
        market = _market(request)
        _may_trade(signed)
        price, quantity, time_in_force = _update_body(await request.body())
        order = _own_order(market.sequencer.exchange, signed.account_id, order_id)
        if time_in_force is not None and time_in_force != order.time_in_force:
            raise _invalid(
                "time_in_force",
                f"cannot be changed (the order is {order.time_in_force}); "
                "cancel it and place a new one",
                "unsupported_time_in_force",
            )
        command = ReplaceOrder(signed.account_id, OrderId(order.order_id), price, quantity)
        outcome = await market.submit(command)
        reason = _rejection(outcome)
        if reason == RejectReason.unknown_order:
            raise Problem(404, "order_not_found", f"order {order_id!r} not found")
        if reason == RejectReason.order_not_open:
            raise Problem(409, "order_not_open", f"order {order_id!r} is {order.status}")
        if reason is not None:
            raise Problem(422, reason, f"update refused: {reason}")
        orders = market.sequencer.exchange.state.orders
        for event in outcome.events:
            if isinstance(event, OrderAccepted):
                return JSONResponse({"data": order_json(orders[event.order_id])})
        raise Problem(422, "rejected", "update refused")  # pragma: no cover - core contract
    except Problem as problem:
        return problem.response()


# -- cancelling ---------------------------------------------------------------------------------


@router.delete(
    "/orders/{order_id}",
    status_code=204,
    response_model=None,
    responses=docs.CANCEL_ORDER_RESPONSES,
)
async def cancel_order(request: Request, order_id: str, signed: Signed) -> Response:
    """Exactly 204 on success (contract line 279); 404 unknown or foreign; 409 not open."""
    try:
        market = _market(request)
        _may_trade(signed)
        order = _own_order(market.sequencer.exchange, signed.account_id, order_id)
        outcome = await market.submit(CancelOrder(signed.account_id, OrderId(order.order_id)))
        reason = _rejection(outcome)
        if reason == RejectReason.unknown_order:
            raise Problem(404, "order_not_found", f"order {order_id!r} not found")
        if reason == RejectReason.order_not_open:
            raise Problem(409, "order_not_open", f"order {order_id!r} is {order.status}")
        if reason is not None:
            raise Problem(422, reason, f"cancel refused: {reason}")
        return Response(status_code=204)
    except Problem as problem:
        return problem.response()


async def _cancel_all(request: Request, signed: SignedAccount, market_id: str | None) -> Response:
    try:
        market = _market(request)
        _may_trade(signed)
        instrument = None if market_id is None else InstrumentId(market_id)
        outcome = await market.submit(CancelAllOrders(signed.account_id, instrument))
        reason = _rejection(outcome)
        if reason == RejectReason.unknown_instrument:
            raise Problem(404, "market_not_found", f"market {market_id!r} not found")
        if reason is not None:
            raise Problem(422, reason, f"cancel refused: {reason}")
        cancelled = sum(1 for e in outcome.events if isinstance(e, OrderCancelled))
        return JSONResponse({"data": {"cancelled": cancelled}})
    except Problem as problem:
        return problem.response()


@router.delete("/orders", response_model=None, responses=docs.CANCEL_ALL_RESPONSES)
async def cancel_all_orders(request: Request, signed: Signed) -> Response:
    """200 `{"data": {"cancelled": N}}`, N a JSON number (contract line 253)."""
    return await _cancel_all(request, signed, None)


@router.delete(
    "/markets/{market_id}/orders", response_model=None, responses=docs.CANCEL_ALL_RESPONSES
)
async def cancel_market_orders(request: Request, market_id: str, signed: Signed) -> Response:
    return await _cancel_all(request, signed, market_id)

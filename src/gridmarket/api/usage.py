"""One's own usage receipts on the signed Trading API: every settled consumption call.

    GET /v1/usage?key_id=&instrument_id=(or model=)&status=&start_datetime=&end_datetime=
                 &order_direction=desc|asc&limit=&next=|prev=
    GET /v1/usage/daily?key_id=&instrument_id=&from_date=&to_date=&limit=
    GET /v1/usage/in-flight
    GET /v1/usage/{request_id}            (or the call id; `daily` and `in-flight` are the
                                           routes above, never a request id)
    GET /v1/api-keys/{key_id}/usage       (GET /v1/usage?key_id=..., for one of one's keys)

The operator's equivalents are in `api.admin_usage`.

Always the caller's own account: another account's request id is a 404 `usage_not_found`,
exactly like an unknown one, and another account's key a 404 `api_key_not_found` (the
self-service routes under /v1/api-keys are GET/POST on the collection and DELETE on one key,
so GET `/v1/api-keys/{key_id}/usage` does not clash with them).

Lists: filters and paging are `api.listing`'s (plain or Flop): `key_id`, `instrument_id` (also
`model` or `market_id`: the instrument named as the model; case-insensitive), `status` (`ok`,
`failed`, `cancelled`), `request_id`, and the settlement time (`start_datetime` /
`end_datetime`, or a Flop filter on `created_at`/`settled_at`); **newest first** by default.
Daily totals are per UTC day, key and instrument, newest day first; `from_date` / `to_date`
(`YYYY-MM-DD`, ISO 8601 or Unix seconds) select whole days, both inclusive; `limit` 1-1000
(default 100), `has_more` says whether rows were left out.

A receipt (`receipt_json`): ids (`request_id`, `call_id`, `key_id`, `account_id`), where it
ran (`instrument_id`, `supplier_id`, `model` as the supplier reported it), tokens as integers
(`prompt_tokens`, `completion_tokens`, `total_tokens`, `committed_tokens`, `used_tokens`,
`billed_tokens`, `released_tokens`, `unbilled_tokens`), `ttft_ms`, `duration_ms`,
`tokens_per_second`, `status`, `usage_estimated`, the value billed (`billed_value_usd` as a
decimal string and `billed_value_usd_micros`), the `lots` it drew from (lot id, tokens,
supplier, price, value and funding `trade_ids`), the `substitutions` (lots another supplier,
or the operator's own endpoint, delivered: the lot, its `supplier_id`, the `substitute_id`,
`tokens`, `amount_usd` the supplier paid the substitute and `receivable_usd`, the part the
operator paid because the supplier's USD fell short; empty when the lots' suppliers
delivered), and `started_at` / `settled_at`. Values and bounds are `service.usage`'s
(rounding, retention).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gridmarket.adapters import registry
from gridmarket.api import listing, wire
from gridmarket.api.errors import Problem, invalid
from gridmarket.api.signed import Signed, SignedRoute
from gridmarket.service.followed import model_lifespan
from gridmarket.service.market import MarketService
from gridmarket.service.usage import DAY_MS, STATUSES, InFlight, Receipt, Totals, Usage

CURSOR_PREFIX = "u"
FILTER_FIELDS = frozenset({"instrument_id", "key_id", "status", "request_id"})
FILTER_ALIASES = {"model": "instrument_id", "market_id": "instrument_id"}
TIME_COLUMNS = ("created_at", "settled_at")
DEFAULT_DAILY_LIMIT = 100
MAX_DAILY_LIMIT = 1_000
MAX_ID_CHARS = 256
_DIGITS = re.compile(r"[0-9]{1,4}")


_lifespan = model_lifespan("usage", lambda market: Usage())

router = APIRouter(prefix="/v1", tags=["usage"], route_class=SignedRoute, lifespan=_lifespan)


def _time(ms: int | None) -> str | None:
    return None if ms is None else wire.timestamp(ms)


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    lots = [
        {
            "lot_id": str(lot.lot_id),
            "tokens": lot.tokens,
            "supplier_id": lot.supplier_id,
            "price": None if lot.price_usd_micros is None else wire.usd(lot.price_usd_micros),
            "price_usd_micros": lot.price_usd_micros,
            "value_usd": None if lot.value_usd_micros is None else wire.usd(lot.value_usd_micros),
            "value_usd_micros": lot.value_usd_micros,
            "trade_ids": [str(t) for t in lot.trade_ids],
        }
        for lot in receipt.billed_lots
    ]
    substitutions = [
        {
            "lot_id": str(sub.lot_id),
            "supplier_id": sub.supplier_id,
            "substitute_id": sub.substitute_id,
            "tokens": sub.tokens,
            "amount_usd": wire.usd(sub.amount_usd_micros),
            "amount_usd_micros": sub.amount_usd_micros,
            "receivable_usd": wire.usd(sub.receivable_usd_micros),
            "receivable_usd_micros": sub.receivable_usd_micros,
        }
        for sub in receipt.substitutions
    ]
    settled_at = wire.timestamp(receipt.settled_ms)
    return {
        "id": receipt.request_id or receipt.call_id,
        "request_id": receipt.request_id,
        "call_id": receipt.call_id,
        "account_id": receipt.account_id,
        "key_id": receipt.key_id,
        "instrument_id": receipt.instrument_id,
        "supplier_id": receipt.supplier_id,
        "model": receipt.model,
        "status": receipt.status,
        "usage_estimated": receipt.usage_estimated,
        "prompt_tokens": receipt.prompt_tokens,
        "completion_tokens": receipt.completion_tokens,
        "total_tokens": receipt.prompt_tokens + receipt.completion_tokens,
        "committed_tokens": receipt.committed_tokens,
        "used_tokens": receipt.used_tokens,
        "billed_tokens": receipt.billed_tokens,
        "released_tokens": receipt.released_tokens,
        "unbilled_tokens": receipt.unbilled_tokens,
        "ttft_ms": receipt.ttft_ms,
        "duration_ms": receipt.duration_ms,
        "tokens_per_second": receipt.tokens_per_second,
        "billed_value_usd": wire.usd(receipt.billed_usd_micros),
        "billed_value_usd_micros": receipt.billed_usd_micros,
        "lots": lots,
        "substitutions": substitutions,
        "started_at": _time(receipt.started_ms),
        "settled_at": settled_at,
        "created_at": settled_at,
    }


def totals_json(totals: Totals) -> dict[str, Any]:
    return {
        "calls": totals.calls,
        "ok_calls": totals.ok_calls,
        "failed_calls": totals.failed_calls,
        "cancelled_calls": totals.cancelled_calls,
        "prompt_tokens": totals.prompt_tokens,
        "completion_tokens": totals.completion_tokens,
        "used_tokens": totals.used_tokens,
        "billed_tokens": totals.billed_tokens,
        "unbilled_tokens": totals.unbilled_tokens,
        "billed_value_usd": wire.usd(totals.billed_usd_micros),
        "billed_value_usd_micros": totals.billed_usd_micros,
    }


def in_flight_json(call: InFlight) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "instrument_id": call.instrument_id,
        "key_id": call.key_id,
        "committed_tokens": call.committed_tokens,
        "started_at": wire.timestamp(call.started_ms),
    }


async def _model(request: Request) -> Usage:
    """The read model, once it holds every acknowledged command (read-your-writes)."""
    market = request.app.state.market
    model = getattr(request.app.state, "usage", None)
    if not isinstance(market, MarketService) or not isinstance(model, Usage):
        raise Problem(503, "service_unavailable", "the market service is not running")
    await model.caught_up(market.sequencer.committed_seq)
    return model


def _filters(query: Any, key_id: str | None = None) -> listing.Filters:
    filters = listing.parse_filters(
        query, FILTER_FIELDS, time_columns=TIME_COLUMNS, aliases=FILTER_ALIASES
    )
    equal = dict(filters.equal)
    if "instrument_id" in equal:
        equal["instrument_id"] = frozenset(v.lower() for v in equal["instrument_id"])
    statuses = equal.get("status")
    if statuses is not None and not statuses <= frozenset(STATUSES):
        raise invalid("status", "must be one of " + ", ".join(STATUSES))
    if key_id is not None:
        equal["key_id"] = frozenset({key_id})
    for name, values in equal.items():
        if any(len(v) > MAX_ID_CHARS for v in values):
            raise invalid(name, f"at most {MAX_ID_CHARS} characters")
    return listing.Filters(equal, filters.start_ms, filters.end_ms)


def _matcher(filters: listing.Filters, of: Callable[[int], Receipt]) -> Callable[[int], bool]:
    equal = filters.equal
    instruments, keys = equal.get("instrument_id"), equal.get("key_id")
    statuses, requests = equal.get("status"), equal.get("request_id")

    def keep(seq: int) -> bool:
        receipt = of(seq)
        return (
            (instruments is None or receipt.instrument_id in instruments)
            and (keys is None or receipt.key_id in keys)
            and (statuses is None or receipt.status in statuses)
            and (requests is None or receipt.request_id in requests)
        )

    return keep


async def list_for(request: Request, account_id: str, key_id: str | None = None) -> Response:
    """One page of `account_id`'s receipts as the request's query asks (shared with admin)."""
    query = request.query_params
    paging = listing.parse_paging(query, CURSOR_PREFIX)
    if query.get("order_direction") is None and query.get("order_directions[]") is None:
        paging = paging._replace(descending=True)  # receipts: newest first unless asked
    filters = _filters(query, key_id)
    model = await _model(request)
    seqs = model.receipt_seqs(account_id)

    def of(seq: int) -> Receipt:
        receipt = model.receipt(account_id, seq)
        assert receipt is not None
        return receipt

    bounds = listing.time_range(seqs, lambda s: of(s).settled_ms, filters)
    chosen = listing.page(seqs, bounds, _matcher(filters, of), paging, CURSOR_PREFIX)
    data = [receipt_json(of(s)) for s in chosen.keys]
    return JSONResponse({"data": data, "paging": chosen.paging})


@router.get("/usage", response_model=None)
async def list_usage(request: Request, signed: Signed) -> Response:
    """The caller's usage receipts, newest first, filtered and paged (module docstring)."""
    try:
        return await list_for(request, signed.account_id)
    except Problem as problem:
        return problem.response()


def _day(field: str, raw: str | None) -> int | None:
    return None if raw is None else listing.parse_time(field, raw) // DAY_MS


async def daily_for(request: Request, account_id: str) -> Response:
    """`account_id`'s daily rows as the request's query asks (shared with admin)."""
    query = request.query_params
    raw_limit = query.get("limit")
    limit = DEFAULT_DAILY_LIMIT
    if raw_limit is not None:
        text = raw_limit.strip()
        if _DIGITS.fullmatch(text) is None or not 1 <= int(text) <= MAX_DAILY_LIMIT:
            raise invalid("limit", f"must be an integer from 1 to {MAX_DAILY_LIMIT}")
        limit = int(text)
    first = _day("from_date", query.get("from_date") or query.get("start_datetime"))
    last = _day("to_date", query.get("to_date") or query.get("end_datetime"))
    filters = _filters(query)
    keys, instruments = filters.equal.get("key_id"), filters.equal.get("instrument_id")
    model = await _model(request)
    rows = [
        (day, totals)
        for day, totals in model.daily(account_id)
        if (first is None or day.day >= first)
        and (last is None or day.day <= last)
        and (keys is None or day.key_id in keys)
        and (instruments is None or day.instrument_id in instruments)
    ]
    data = [
        {
            "date": wire.timestamp(day.day * DAY_MS)[:10],
            "key_id": day.key_id,
            "instrument_id": day.instrument_id,
        }
        | totals_json(totals)
        for day, totals in rows[:limit]
    ]
    return JSONResponse({"data": data, "paging": {"has_more": len(rows) > limit}})


@router.get("/usage/daily", response_model=None)
async def daily_usage(request: Request, signed: Signed) -> Response:
    """The caller's totals per UTC day, key and instrument, newest day first."""
    try:
        return await daily_for(request, signed.account_id)
    except Problem as problem:
        return problem.response()


@router.get("/usage/in-flight", response_model=None)
async def in_flight(request: Request, signed: Signed) -> Response:
    """The caller's calls whose tokens are committed and not yet settled, oldest first."""
    try:
        model = await _model(request)
        calls = sorted(model.in_flight_of(signed.account_id), key=lambda c: c.seq)
        return JSONResponse({"data": [in_flight_json(c) for c in calls]})
    except Problem as problem:
        return problem.response()


@router.get("/usage/{request_id}", response_model=None)
async def get_usage(request: Request, request_id: str, signed: Signed) -> Response:
    try:
        model = await _model(request)
        receipt = None
        if 0 < len(request_id) <= MAX_ID_CHARS:
            receipt = model.receipt_by_request(signed.account_id, request_id)
        if receipt is None:
            raise Problem(404, "usage_not_found", f"usage receipt {request_id[:64]!r} not found")
        return JSONResponse({"data": receipt_json(receipt)})
    except Problem as problem:
        return problem.response()


@router.get("/api-keys/{key_id}/usage", response_model=None)
async def key_usage(request: Request, key_id: str, signed: Signed) -> Response:
    """The receipts of one of the caller's consumption keys (revoked ones included)."""
    try:
        model = await _model(request)
        market: MarketService = request.app.state.market
        known = key_id in model.key_ids(signed.account_id)
        if not known and len(key_id) <= MAX_ID_CHARS:
            keys = await asyncio.to_thread(
                registry.list_consumption_keys, market.store.engine, signed.account_id
            )
            known = any(k.key_id == key_id for k in keys)
        if not known:
            raise Problem(404, "api_key_not_found", f"api key {key_id[:64]!r} not found")
        return await list_for(request, signed.account_id, key_id)
    except Problem as problem:
        return problem.response()

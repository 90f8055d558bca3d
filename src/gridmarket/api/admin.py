"""The admin API, `/v1/admin/...`: accounts, deposits and the ledger audit, for the operator.

Every route needs `Authorization: Bearer <operator token>` (the token in
`<data dir>/operator-token`, see `auth.operator`), compared in constant time; without it, or
with another token, the answer is a 401 `auth_failed`. An app with no token configured refuses
everything. Bodies are validated strictly (types, ranges, lengths, no unknown fields): a bad
one is a 422 `validation_error`. Money travels as decimal strings (`"25.50"`, at most 6
decimals); a JSON number is refused, since a binary float cannot carry money exactly.

    curl -H "Authorization: Bearer $(cat ~/.gridmarket/operator-token)" \
         -d '{"name": "alice", "deposit_usd": "100"}' http://127.0.0.1:8000/v1/admin/accounts

    POST /v1/admin/accounts                  an account, its keys, an optional deposit
    POST /v1/admin/accounts/{id}/deposits    credit USD to an account
    GET  /v1/admin/accounts?limit=&cursor=   registered accounts, in id order
    GET  /v1/admin/audit                     per asset, the sum over all ledger accounts
    POST /v1/admin/accounts/{id}/capacity    a supplier's capacity on one instrument
                                             {instrument_id, capacity_tokens_per_min}

A deposit to a supplier that owes the operator for substitutions pays that first; the deposit
answer's `receivable_usd` is what it still owes (`api.admin_receivables` lists and settles).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gridmarket.adapters import registry
from gridmarket.api.errors import error_response
from gridmarket.api.money import format_usd_micros, parse_usd_micros
from gridmarket.auth.operator import token_matches
from gridmarket.core.commands import SetSupplierCapacity
from gridmarket.core.events import Rejected
from gridmarket.core.exchange import MAX_ACCOUNT_ID_LENGTH
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.service import accounts
from gridmarket.service.market import MarketService

MAX_NAME_CHARS = 100
MAX_CURSOR_CHARS = 64

#: Micro-USD, given on the wire as a positive decimal string (see `api.money`).
UsdAmount = Annotated[int, BeforeValidator(parse_usd_micros, json_schema_input_type=str)]


def require_operator(request: Request) -> None:
    """Refuse the request unless it carries the operator token."""
    expected: str | None = getattr(request.app.state, "operator_token", None)
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if expected is None or scheme.lower() != "bearer" or not token_matches(presented, expected):
        raise HTTPException(
            401,
            detail="an operator token is required: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


class _OperatorRoute(APIRoute):
    """A route that checks the operator token first, before the body is even parsed.

    (A dependency would run after FastAPI has read the body, so an unauthenticated caller
    sending bad JSON would learn about the body's validation instead of getting its 401.)
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            require_operator(request)
            return await handle(request)

        return checked


router = APIRouter(prefix="/v1/admin", route_class=_OperatorRoute)


def _market(request: Request) -> MarketService:
    market: MarketService | None = request.app.state.market
    if market is None:
        raise HTTPException(503, detail="the market is not running")
    return market


Market = Annotated[MarketService, Depends(_market)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CreateAccountBody(_Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    supplier: bool = False
    deposit_usd: UsdAmount | None = None
    mode: Literal["easy", "advanced"] = "easy"


class DepositBody(_Strict):
    amount_usd: UsdAmount


class CapacityBody(_Strict):
    instrument_id: str = Field(min_length=1, max_length=64)
    capacity_tokens_per_min: int = Field(ge=0, le=10**12)


def _check_amount(market: MarketService, amount_usd_micros: int) -> None:
    limit = market.sequencer.exchange.state.config.max_usd_move_usd_micros
    if amount_usd_micros > limit:
        raise HTTPException(422, detail=f"amount above the limit of {format_usd_micros(limit)}")


@router.post("/accounts", status_code=201)
async def create_account(body: CreateAccountBody, market: Market) -> dict[str, Any]:
    """Open an account with one signing key and one consumption key, shown only here."""
    if body.deposit_usd is not None:
        _check_amount(market, body.deposit_usd)
    opened = await accounts.open_account(
        market, name=body.name, is_supplier=body.supplier, mode=body.mode
    )
    if body.deposit_usd is not None:
        await accounts.deposit(market, opened.account_id, body.deposit_usd)
    return {
        "data": {
            "account_id": opened.account_id,
            "consumption_key": opened.consumption_key,
            "signing_key": {
                "private_key": opened.private_key,
                "public_key": opened.public_key,
                "fingerprint": opened.fingerprint,
            },
        }
    }


@router.post("/accounts/{account_id}/deposits", status_code=201)
async def deposit(
    account_id: Annotated[str, Path(max_length=MAX_ACCOUNT_ID_LENGTH)],
    body: DepositBody,
    market: Market,
) -> dict[str, Any]:
    """Credit USD from outside to a registered account."""
    _check_amount(market, body.amount_usd)
    found = await asyncio.to_thread(registry.get_account, market.store.engine, account_id)
    if found is None:
        raise HTTPException(404, detail=f"no account {account_id!r}")
    try:
        outcome = await accounts.deposit(market, AccountId(account_id), body.amount_usd)
    except accounts.DepositRefused as refused:
        raise HTTPException(422, detail=f"deposit refused: {refused.reason}") from None
    state = market.sequencer.exchange.state
    available = state.ledger.get(f"{account_id}/usd/available")
    account = state.accounts.get(AccountId(account_id))
    owed = 0 if account is None else account.receivable_usd_micros
    return {
        "data": {
            "account_id": account_id,
            "amount_usd": format_usd_micros(body.amount_usd),
            "usd_available": format_usd_micros(available),
            "receivable_usd": format_usd_micros(owed),
            "seq": outcome.seq,
        }
    }


@router.get("/accounts")
async def list_accounts(
    market: Market,
    limit: Annotated[int, Query(ge=1, le=registry.MAX_PAGE_ROWS)] = 50,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
) -> dict[str, Any]:
    """Registered accounts in id order; pass `next` back as `cursor` for the following page."""
    rows = await asyncio.to_thread(
        registry.list_accounts, market.store.engine, after_account_id=cursor, limit=limit
    )
    return {
        "data": [
            {
                "account_id": row.account_id,
                "name": row.name,
                "supplier": row.is_supplier,
                "mode": row.mode,
                "created_at_ms": row.created_at_ms,
            }
            for row in rows
        ],
        "next": rows[-1].account_id if len(rows) == limit else None,
    }


@router.get("/audit")
async def audit(market: Market) -> dict[str, Any]:
    """The live ledger: per asset the sum over every account (all zero when it balances)."""
    exchange = market.sequencer.exchange
    sums = exchange.audit()
    negatives = exchange.state.ledger.negative_accounts()
    return {
        "data": {
            "balanced": all(total == 0 for total in sums.values()) and not negatives,
            "last_seq": exchange.last_seq,
            "sums_by_asset": dict(sorted(sums.items())),
            "negative_accounts": sorted(negatives),
        }
    }


@router.post("/accounts/{account_id}/capacity", response_model=None)
async def set_capacity(
    account_id: Annotated[str, Path(max_length=MAX_ACCOUNT_ID_LENGTH)],
    body: CapacityBody,
    market: Market,
) -> Any:
    """Set a supplier's capacity on one instrument (tokens/min); it bounds issuance.

    Outstanding tokens may then reach capacity x the issuance horizon. Until supplier
    admission measures it, the operator sets it here. Unknown account: 404; the core's
    refusals (`not_a_supplier`, `unknown_instrument`) are 422s with that code.
    """
    found = await asyncio.to_thread(registry.get_account, market.store.engine, account_id)
    if found is None:
        raise HTTPException(404, detail=f"no account {account_id!r}")
    command = SetSupplierCapacity(
        AccountId(account_id), InstrumentId(body.instrument_id), body.capacity_tokens_per_min
    )
    outcome = await market.submit(command)
    for event in outcome.events:
        if isinstance(event, Rejected):
            return error_response(422, f"capacity refused: {event.reason}", event.reason)
    horizon_min = market.sequencer.exchange.state.config.issuance_horizon_min
    return {
        "data": {
            "account_id": account_id,
            "instrument_id": body.instrument_id,
            "capacity_tokens_per_min": body.capacity_tokens_per_min,
            "max_outstanding_tokens": body.capacity_tokens_per_min * horizon_min,
            "seq": outcome.seq,
        }
    }

"""Supplier endpoints of the signed Trading API: issuance, issuance -> trading, liability.

    GET  /v1/issuance-accounts                 per instrument: issued, transferred, available
    POST /v1/supply-issuances                  {instrument_id, quantity}: issue units (201)
    GET  /v1/supply-issuances                  the caller's issuances, newest first, paged
    GET  /v1/supply-issuances/summary          an array of per-instrument totals
    POST /v1/issuance-accounts/transfer        {instrument_id, quantity, trading_account_id?}
    GET  /v1/supplier-liability[/{instrument_id}]

Only supplier accounts may call these: any other account gets a 403 `not_a_supplier`. Units
are whole units (1 unit = 1,000,000 tokens); liability is in tokens, as DESIGN section 5
defines it: sold - delivered - forfeited (`total_liability` = sold, `fulfilled` = delivered +
forfeited, `outstanding` = the rest), decimal strings as the client parses them.

Issuance is bounded by the capacity the operator set (`POST /v1/admin/accounts/{id}/capacity`):
outstanding tokens (issued, not yet delivered or forfeited) may not pass capacity (tokens/min)
x the issuance horizon (240 min by default). Past it the core refuses with
`capacity_exceeded`, answered as a 422 that says how many units can still be issued. A
supplier that owes the operator for substitutions (another supplier delivered its lots and
its USD fell short, DESIGN section 9) may not issue until that is paid: a 422
`receivable_outstanding` naming the amount; every liability row shows it as `receivable_usd`.
Other core refusals (`unknown_instrument`, `insufficient_units`, ...) are 422s with the core's
reason.
The issuance history comes from `service.account_history` (committed `UnitsIssued` events, so
it survives restarts); an issuance's id is `iss_<seq>`; the issuance account of an instrument
is `<account>:issuance:<instrument>`, its trading account `<account>:trading:<instrument>`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gridmarket.api import params, wire
from gridmarket.api import write_docs as docs
from gridmarket.api.accounts import instrument_fields, moved, refusal, times, transfer_json
from gridmarket.api.errors import Problem, invalid
from gridmarket.api.signed import Signed, SignedAccount, SignedRoute
from gridmarket.core.accounts import Account, SupplierPosition
from gridmarket.core.commands import IssueUnits, TransferIssuanceToTrading
from gridmarket.core.events import UnitsIssued
from gridmarket.core.ids import InstrumentId
from gridmarket.core.reasons import RejectReason
from gridmarket.core.state import MarketState
from gridmarket.core.units import TOKENS_PER_UNIT
from gridmarket.service.account_history import AccountHistory, IssuanceRecord

ISSUE_KEYS = frozenset({"instrument_id", "quantity"})
ISSUANCE_TRANSFER_KEYS = frozenset({"instrument_id", "quantity", "trading_account_id"})
NOT_A_SUPPLIER = "only supplier accounts may use the supply endpoints"

router = APIRouter(prefix="/v1", tags=["supply"], route_class=SignedRoute)


def _supplier(state: MarketState, signed: SignedAccount) -> Account:
    account = state.accounts.get(signed.account_id)
    if account is None or not account.is_supplier:
        raise Problem(403, RejectReason.not_a_supplier, NOT_A_SUPPLIER)
    return account


def _positions(account: Account) -> list[tuple[str, SupplierPosition]]:
    return sorted(account.supplier_positions.items())


def _issuance_figures(
    state: MarketState, account: Account, instrument_id: str, position: SupplierPosition
) -> dict[str, Any]:
    holding = account.holdings.get(instrument_id)
    available_tokens = 0 if holding is None else state.ledger.get(holding.issuance)
    issued_units = position.issued_tokens // TOKENS_PER_UNIT
    available_units = available_tokens // TOKENS_PER_UNIT
    ceiling_tokens = position.capacity_tokens_per_min * state.config.issuance_horizon_min
    room_tokens = max(0, ceiling_tokens - position.outstanding_tokens)
    return {
        "total_issued": wire.units(issued_units),
        "total_transferred": wire.units(issued_units - available_units),
        "available_balance": wire.units(available_units),
        "capacity_tokens_per_min": position.capacity_tokens_per_min,
        "max_outstanding_tokens": str(ceiling_tokens),
        "outstanding_tokens": str(position.outstanding_tokens),
        # 0 while a receivable is outstanding: issuance is refused whatever the capacity.
        "issuable_units": 0 if account.receivable_usd_micros else room_tokens // TOKENS_PER_UNIT,
    }


def _issuance_account_row(
    model: AccountHistory, state: MarketState, account: Account, instrument_id: str
) -> dict[str, Any]:
    position = account.supplier_positions[instrument_id]
    return {
        "id": f"{account.account_id}:issuance:{instrument_id}",
        "account_id": account.account_id,
        **instrument_fields(state, instrument_id),
        "status": "active",
        **_issuance_figures(state, account, instrument_id, position),
        **times(model, state, account.account_id, instrument_id),
    }


@router.get("/issuance-accounts", response_model=None)
async def list_issuance_accounts(request: Request, signed: Signed) -> Response:
    """One row per instrument the supplier has a capacity or issuance on."""
    try:
        market, model = await params.history(request)
        state = market.sequencer.exchange.state
        account = _supplier(state, signed)
        rows = [_issuance_account_row(model, state, account, i) for i, _ in _positions(account)]
        return JSONResponse({"data": rows})
    except Problem as problem:
        return problem.response()


# -- issuing ------------------------------------------------------------------------------------


def _issuance_json(state: MarketState, record: IssuanceRecord) -> dict[str, Any]:
    when = wire.timestamp(record.ts_ms)
    return {
        "id": record.issuance_id,
        "issuance_id": record.issuance_id,
        "issuance_account_id": f"{record.account_id}:issuance:{record.instrument_id}",
        "account_id": record.account_id,
        **instrument_fields(state, record.instrument_id),
        "quantity": record.quantity_units,
        "status": "completed",
        "issued_at": when,
        "created_at": when,
    }


def _capacity_problem(state: MarketState, account: Account, instrument_id: str) -> Problem:
    position = account.supplier_positions.get(instrument_id)
    if position is None or position.capacity_tokens_per_min == 0:
        why = "no capacity is set for this instrument; the operator sets it"
    else:
        room = _issuance_figures(state, account, instrument_id, position)["issuable_units"]
        why = f"at most {room} more units can be issued within the capacity"
    return Problem(422, RejectReason.capacity_exceeded, f"issuance refused: {why}")


@router.post(
    "/supply-issuances",
    status_code=201,
    response_model=None,
    openapi_extra=docs.request_body(docs.UnitsBody),
    responses=docs.ISSUE_RESPONSES,
)
async def issue_supply(request: Request, signed: Signed) -> Response:
    try:
        market = params.market(request)
        account = _supplier(market.sequencer.exchange.state, signed)
        body = params.json_body(await request.body(), ISSUE_KEYS)
        instrument_id = params.instrument_id(body)
        quantity = params.quantity(body)
        outcome = await market.submit(
            IssueUnits(signed.account_id, InstrumentId(instrument_id), quantity)
        )
        state = market.sequencer.exchange.state
        for event in outcome.events:
            if isinstance(event, UnitsIssued):
                record = IssuanceRecord(
                    f"iss_{outcome.seq}",
                    outcome.seq,
                    outcome.ts_ms,
                    event.account_id,
                    event.instrument_id,
                    event.quantity_units,
                )
                return JSONResponse({"data": _issuance_json(state, record)}, 201)
        problem = refusal(outcome.events, "issuance")
        if problem.code == RejectReason.capacity_exceeded:
            raise _capacity_problem(state, account, instrument_id)
        if problem.code == RejectReason.receivable_outstanding:
            owed = wire.usd(account.receivable_usd_micros)
            raise Problem(
                problem.status_code,
                problem.code,
                f"issuance refused: the account owes the operator {owed} USD for substitutions "
                "it paid; issuance resumes once that is settled",
            )
        raise problem
    except Problem as problem:
        return problem.response()


@router.get("/supply-issuances", response_model=None)
async def list_supply_issuances(request: Request, signed: Signed) -> Response:
    """The supplier's issuances, newest first; `instrument_id`; `next`/`prev`/`limit`."""
    try:
        market, model = await params.history(request)
        state = market.sequencer.exchange.state
        _supplier(state, signed)
        wanted = params.filters(request.query_params, ("instrument_id",)).get("instrument_id")
        records, paging = params.page(
            model.issuances_of(signed.account_id),
            lambda r: (r.seq, 0),
            request.query_params,
            lambda r: wanted is None or r.instrument_id == wanted,
        )
        rows = [_issuance_json(state, r) for r in records]
        return JSONResponse({"data": rows, "paging": paging})
    except Problem as problem:
        return problem.response()


@router.get("/supply-issuances/summary", response_model=None)
async def supply_summary(request: Request, signed: Signed) -> Response:
    """An array (what `grid supply summary` reads) of per-instrument issuance totals."""
    try:
        market = params.market(request)
        state = market.sequencer.exchange.state
        account = _supplier(state, signed)
        rows = []
        for instrument_id, position in _positions(account):
            figures = _issuance_figures(state, account, instrument_id, position)
            rows.append(
                {
                    **instrument_fields(state, instrument_id),
                    **figures,
                    "quantity": figures["total_issued"],
                    "units_available": figures["available_balance"],
                    "units_transferred_to_trading": figures["total_transferred"],
                }
            )
        return JSONResponse({"data": rows})
    except Problem as problem:
        return problem.response()


# -- issuance -> trading ------------------------------------------------------------------------


@router.post(
    "/issuance-accounts/transfer",
    response_model=None,
    openapi_extra=docs.request_body(docs.IssuanceTransferBody),
    responses=docs.ISSUANCE_TRANSFER_RESPONSES,
)
async def issuance_to_trading(request: Request, signed: Signed) -> Response:
    """Move issued units to the trading account (where the supplier can offer them)."""
    try:
        market = params.market(request)
        _supplier(market.sequencer.exchange.state, signed)
        body = params.json_body(await request.body(), ISSUANCE_TRANSFER_KEYS)
        instrument_id = params.instrument_id(body)
        quantity = params.quantity(body)
        trading_account_id = f"{signed.account_id}:trading:{instrument_id}"
        given = body.get("trading_account_id")
        if given is not None and given != trading_account_id:
            raise invalid(
                "trading_account_id", f"must be this account's {trading_account_id!r} (or absent)"
            )
        command = TransferIssuanceToTrading(
            signed.account_id, InstrumentId(instrument_id), quantity
        )
        outcome = await market.submit(command)
        record = moved(outcome.events, outcome.seq, outcome.ts_ms, "issuance")
        if record is None:
            raise refusal(outcome.events, "transfer")
        data = transfer_json(market.sequencer.exchange.state, record) | {
            "trading_account_id": trading_account_id,
            "issuance_account_id": f"{signed.account_id}:issuance:{instrument_id}",
        }
        return JSONResponse({"data": data, "transfer_id": record.transfer_id})
    except Problem as problem:
        return problem.response()


# -- liability ----------------------------------------------------------------------------------


def _liability_row(
    state: MarketState, account: Account, instrument_id: str, position: SupplierPosition | None
) -> dict[str, Any]:
    sold = 0 if position is None else position.sold_tokens
    delivered = 0 if position is None else position.delivered_tokens
    forfeited = 0 if position is None else position.forfeited_tokens
    return {
        **instrument_fields(state, instrument_id),
        "unit": "tokens",
        "total_liability": str(sold),
        "fulfilled": str(delivered + forfeited),
        "outstanding": str(sold - delivered - forfeited),
        "sold_tokens": str(sold),
        "delivered_tokens": str(delivered),
        "forfeited_tokens": str(forfeited),
        # The account's, on every row: owed to the operator for substitutions it paid.
        "receivable_usd": wire.usd(account.receivable_usd_micros),
        "receivable_usd_micros": account.receivable_usd_micros,
    }


@router.get("/supplier-liability", response_model=None)
async def list_liability(request: Request, signed: Signed) -> Response:
    """Per instrument: tokens sold, fulfilled (delivered + forfeited) and still owed."""
    try:
        market = params.market(request)
        state = market.sequencer.exchange.state
        account = _supplier(state, signed)
        wanted = params.filters(request.query_params, ("instrument_id",)).get("instrument_id")
        rows = [
            _liability_row(state, account, i, position)
            for i, position in _positions(account)
            if wanted is None or i == wanted
        ]
        return JSONResponse({"data": rows})
    except Problem as problem:
        return problem.response()


@router.get("/supplier-liability/{instrument_id}", response_model=None)
async def get_liability(request: Request, instrument_id: str, signed: Signed) -> Response:
    try:
        market = params.market(request)
        state = market.sequencer.exchange.state
        account = _supplier(state, signed)
        if InstrumentId(instrument_id) not in state.instruments:
            raise Problem(404, "instrument_not_found", f"instrument {instrument_id!r} not found")
        position = account.supplier_positions.get(instrument_id)
        return JSONResponse({"data": _liability_row(state, account, instrument_id, position)})
    except Problem as problem:
        return problem.response()

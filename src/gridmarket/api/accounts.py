"""Balances and transfers on the signed Trading API: one's own accounts, and nobody else's.

    GET  /v1/trading-accounts[/{id}]              per-instrument trading units, and a USD row
    GET  /v1/currency-trading-accounts[/{id}]     the USD credit balance
    GET  /v1/consumption-accounts[/{id}]          per-instrument consumption tokens (+ lots)
    POST /v1/transfers/trading-to-consumption     {instrument_id, quantity}: units -> tokens
    POST /v1/transfers/consumption-to-trading     always refused (422, the core's reason)
    GET  /v1/transfer-histories (alias /v1/transfers/histories)

Balances are read from the live core state (`exchange.state`), synchronously between awaits,
so a read sees whole commands. Field names follow grid-client-contract.md §2 (TradingAccount,
CurrencyTradingAccount, ConsumptionInstrument); balances are decimal strings: trading
balances in whole units, consumption balances in tokens (1 unit = 1,000,000 tokens), USD in
dollars with up to 6 decimals (`"12.500"`); each row names its unit in `balance_unit`.

Ids are stable and name their owner, so another account's id is simply not found (404):
`<account>:trading:<instrument>`, `<account>:usd`, `<account>:consumption:<instrument>` (and,
in `api.supply`, `<account>:issuance:<instrument>`). The trading list holds the USD row
(`currency: "USD"`, `instrument_id: "USD"`, which `grid verify` looks for, contract §4) and a
row for each instrument the account has held; a known instrument's id answers even at zero.
The currency account also answers to `USD` (any case), the only currency there is.

Transfers: trading -> consumption submits the core's `TransferToConsumption` and answers
`{"status": "success", "transfer_id": ..., "data": Transfer}` (the client reads top-level
`transfer_id`, contract line 246). Consumption -> trading submits `TransferToTrading`, which
the core always refuses (`consumption_to_trading_refused`: units in consumption cannot be
resold); nothing changes. The history comes from `service.account_history` (committed
outcomes, so it survives restarts): explicit transfers and sweeps (`trigger: "transfer"`),
auto-transfers on fill (`"auto_transfer"`) and issuance -> trading (`"issuance"`), newest
first, filtered by `instrument_id`/`market_id`, paged with `next`/`prev`/`limit`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gridmarket.api import params, wire
from gridmarket.api import write_docs as docs
from gridmarket.api.errors import Problem
from gridmarket.api.signed import Signed, SignedRoute
from gridmarket.core.accounts import Account, Lot
from gridmarket.core.commands import TransferToConsumption, TransferToTrading
from gridmarket.core.events import Rejected, UnitsTransferred
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.core.state import MarketState
from gridmarket.core.units import TOKENS_PER_UNIT
from gridmarket.service.account_history import USD_ASSET, AccountHistory, TransferRecord
from gridmarket.service.followed import model_lifespan

USD = "USD"
MAX_LOTS_SHOWN = 100
TRANSFER_KEYS = frozenset({"instrument_id", "quantity"})


_lifespan = model_lifespan("account_history", lambda market: AccountHistory())

router = APIRouter(prefix="/v1", tags=["accounts"], route_class=SignedRoute, lifespan=_lifespan)


# -- shared row parts -----------------------------------------------------------------------------


def times(model: AccountHistory, state: MarketState, account_id: str, asset: str) -> dict[str, str]:
    """`created_at`/`updated_at`: the account's creation, the last change in `asset`."""
    created_ms = model.created_ms.get(account_id, state.ts_ms)
    updated_ms = model.touched_ms.get((account_id, asset), created_ms)
    return {"created_at": wire.timestamp(created_ms), "updated_at": wire.timestamp(updated_ms)}


def instrument_fields(state: MarketState, instrument_id: str) -> dict[str, str]:
    instrument = state.instruments.get(InstrumentId(instrument_id))
    name = instrument_id if instrument is None else instrument.name  # dropped from the catalogue
    return {
        "instrument_id": instrument_id,
        "instrument_symbol": instrument_id,
        "instrument_name": name,
        "market_id": instrument_id,
        "market_name": name,
    }


def owned_instrument(state: MarketState, account_id: str, kind: str, raw_id: str) -> str:
    """The instrument of the caller's `<account>:<kind>:<instrument>` id; 404 otherwise."""
    prefix = f"{account_id}:{kind}:"
    if raw_id.startswith(prefix) and InstrumentId(raw_id[len(prefix) :]) in state.instruments:
        return raw_id[len(prefix) :]
    raise Problem(404, "account_not_found", f"{kind} account {raw_id!r} not found")


def _account(state: MarketState, account_id: AccountId) -> Account | None:
    return state.accounts.get(account_id)


def _units(state: MarketState, ledger_key: str) -> int:
    return state.ledger.get(ledger_key) // TOKENS_PER_UNIT


# -- trading and USD ------------------------------------------------------------------------------


def _usd_row(model: AccountHistory, state: MarketState, account_id: AccountId) -> dict[str, Any]:
    account = _account(state, account_id)
    available = 0 if account is None else state.ledger.get(account.usd_available)
    locked = 0 if account is None else state.ledger.get(account.usd_locked)
    return {
        "id": f"{account_id}:usd",
        "account_id": account_id,
        "user_id": account_id,
        "instrument_id": USD,
        "instrument_symbol": USD,
        "instrument_name": "US dollar credits",
        "currency": USD,
        "status": "active",
        "balance_unit": "usd",
        "total_balance": wire.usd(available + locked),
        "available_balance": wire.usd(available),
        "locked_balance": wire.usd(locked),
        "reserved_balance": wire.usd(locked),
        "last_trade_price": None,
        **times(model, state, account_id, USD_ASSET),
    }


def _trading_row(
    model: AccountHistory, state: MarketState, account_id: AccountId, instrument_id: str
) -> dict[str, Any]:
    account = _account(state, account_id)
    holding = None if account is None else account.holdings.get(instrument_id)
    available = 0 if holding is None else _units(state, holding.trading_available)
    locked = 0 if holding is None else _units(state, holding.trading_locked)
    book = state.books.get(InstrumentId(instrument_id))
    last_price = None if book is None else book.last_price_usd_micros
    traded_ms = model.last_trade_ms.get((account_id, instrument_id))
    return {
        "id": f"{account_id}:trading:{instrument_id}",
        "account_id": account_id,
        "user_id": account_id,
        **instrument_fields(state, instrument_id),
        "status": "active",
        "balance_unit": "units",
        "total_balance": wire.units(available + locked),
        "available_balance": wire.units(available),
        "locked_balance": wire.units(locked),
        "reserved_balance": wire.units(locked),
        "last_trade_price": None if last_price is None else wire.usd(last_price),
        "last_trading_activity_at": None if traded_ms is None else wire.timestamp(traded_ms),
        **times(model, state, account_id, instrument_id),
    }


@router.get("/trading-accounts", response_model=None)
async def list_trading_accounts(request: Request, signed: Signed) -> Response:
    """The USD row first, then one row per instrument the account holds, by instrument id."""
    try:
        market, model = await params.history(request)
        state = market.sequencer.exchange.state
        account = _account(state, signed.account_id)
        held = sorted(account.holdings) if account is not None else []
        rows = [_usd_row(model, state, signed.account_id)]
        rows += [_trading_row(model, state, signed.account_id, i) for i in held]
        return JSONResponse({"data": rows, "paging": _one_page()})
    except Problem as problem:
        return problem.response()


@router.get("/trading-accounts/{account_id}", response_model=None)
async def get_trading_account(request: Request, account_id: str, signed: Signed) -> Response:
    try:
        market, model = await params.history(request)
        state = market.sequencer.exchange.state
        if account_id == f"{signed.account_id}:usd":
            return JSONResponse({"data": _usd_row(model, state, signed.account_id)})
        instrument_id = owned_instrument(state, signed.account_id, "trading", account_id)
        return JSONResponse({"data": _trading_row(model, state, signed.account_id, instrument_id)})
    except Problem as problem:
        return problem.response()


@router.get("/currency-trading-accounts", response_model=None)
async def list_currency_accounts(request: Request, signed: Signed) -> Response:
    try:
        market, model = await params.history(request)
        row = _usd_row(model, market.sequencer.exchange.state, signed.account_id)
        return JSONResponse({"data": [row], "paging": _one_page()})
    except Problem as problem:
        return problem.response()


@router.get("/currency-trading-accounts/{account_id}", response_model=None)
async def get_currency_account(request: Request, account_id: str, signed: Signed) -> Response:
    try:
        market, model = await params.history(request)
        if account_id != f"{signed.account_id}:usd" and account_id.upper() != USD:
            raise Problem(404, "account_not_found", f"currency account {account_id!r} not found")
        row = _usd_row(model, market.sequencer.exchange.state, signed.account_id)
        return JSONResponse({"data": row})
    except Problem as problem:
        return problem.response()


def _one_page() -> dict[str, Any]:
    # Bounded by the instrument catalogue: every row fits on one page.
    return {"has_more": False, "next_cursor": None, "prev_cursor": None}


# -- consumption ----------------------------------------------------------------------------------


def _lot_json(lot: Lot) -> dict[str, Any]:
    return {
        "lot_id": str(lot.lot_id),
        "remaining_tokens": str(lot.remaining_tokens),
        "committed_tokens": str(lot.committed_tokens),
        "available_tokens": str(lot.available_tokens),
        "price": wire.usd(lot.price_usd_micros),
        "created_at": wire.timestamp(lot.created_ms),
        "expires_at": None if lot.expires_at_ms is None else wire.timestamp(lot.expires_at_ms),
    }


def _consumption_row(
    model: AccountHistory,
    state: MarketState,
    account_id: AccountId,
    instrument_id: str,
    *,
    with_lots: bool,
) -> dict[str, Any]:
    account = _account(state, account_id)
    holding = None if account is None else account.holdings.get(instrument_id)
    available = 0 if holding is None else state.ledger.get(holding.consumption_available)
    committed = 0 if holding is None else state.ledger.get(holding.consumption_committed)
    lots = [] if holding is None else holding.lots
    totals = model.consumption.get((account_id, instrument_id))
    transferred_in = 0 if totals is None else totals.transferred_in_tokens
    withdrawn = 0 if totals is None else totals.delivered_tokens + totals.forfeited_tokens

    def at(ms: int | None) -> str | None:
        return None if ms is None else wire.timestamp(ms)

    expiries = [lot.expires_at_ms for lot in lots if lot.expires_at_ms is not None]
    row: dict[str, Any] = {
        "id": f"{account_id}:consumption:{instrument_id}",
        "account_id": account_id,
        "user_id": account_id,
        **instrument_fields(state, instrument_id),
        "status": "active",
        "balance_unit": "tokens",
        "available_balance": str(available),
        "committed_balance": str(committed),
        "total_balance": str(available + committed),
        "total_deposits": str(transferred_in),
        "total_withdrawals": str(withdrawn),
        "total_commitments": str(0 if totals is None else totals.committed_tokens),
        "total_transfers_in": str(transferred_in),
        "total_transfers_out": "0",
        "tokens_delivered": str(0 if totals is None else totals.delivered_tokens),
        "tokens_forfeited": str(0 if totals is None else totals.forfeited_tokens),
        "last_deposit_at": at(None if totals is None else totals.last_transfer_ms),
        "last_withdrawal_at": at(None if totals is None else totals.last_withdrawal_ms),
        "last_commitment_at": at(None if totals is None else totals.last_commitment_ms),
        "last_transfer_at": at(None if totals is None else totals.last_transfer_ms),
        "lot_count": len(lots),
        "next_expires_at": at(min(expiries, default=None)),
        **times(model, state, account_id, instrument_id),
    }
    if with_lots:
        row["lots"] = [_lot_json(lot) for lot in lots[:MAX_LOTS_SHOWN]]
    return row


@router.get("/consumption-accounts", response_model=None)
async def list_consumption_accounts(request: Request, signed: Signed) -> Response:
    """One row per instrument the account has ever had consumption tokens in."""
    try:
        market, model = await params.history(request)
        state = market.sequencer.exchange.state
        account = _account(state, signed.account_id)
        held = set() if account is None else set(account.holdings)
        instruments = sorted(
            i
            for i in held
            if account is not None
            and (account.holdings[i].lots or (signed.account_id, i) in model.consumption)
        )
        wanted = params.filters(request.query_params, ("instrument_id",)).get("instrument_id")
        rows = [
            _consumption_row(model, state, signed.account_id, i, with_lots=False)
            for i in instruments
            if wanted is None or i == wanted
        ]
        return JSONResponse({"data": rows, "paging": _one_page()})
    except Problem as problem:
        return problem.response()


@router.get("/consumption-accounts/{account_id}", response_model=None)
async def get_consumption_account(request: Request, account_id: str, signed: Signed) -> Response:
    """One consumption account with its lots (the first 100, in creation order)."""
    try:
        market, model = await params.history(request)
        state = market.sequencer.exchange.state
        instrument_id = owned_instrument(state, signed.account_id, "consumption", account_id)
        row = _consumption_row(model, state, signed.account_id, instrument_id, with_lots=True)
        return JSONResponse({"data": row})
    except Problem as problem:
        return problem.response()


# -- transfers ------------------------------------------------------------------------------------


def transfer_json(state: MarketState, record: TransferRecord) -> dict[str, Any]:
    when = wire.timestamp(record.ts_ms)
    return {
        "id": record.transfer_id,
        "transfer_id": record.transfer_id,
        "account_id": record.account_id,
        **instrument_fields(state, record.instrument_id),
        "sender_account_id": None,
        "from_account_type": record.from_account,
        "to_account_type": record.to_account,
        "quantity": wire.units(record.quantity_units),
        "status": "completed",
        "trigger": record.trigger,
        "created_at": when,
        "completed_at": when,
        "transferred_at": when,
        "inserted_at": when,
        "updated_at": when,
    }


def refusal(outcome_events: list[Any], what: str) -> Problem:
    for event in outcome_events:
        if isinstance(event, Rejected):
            return Problem(422, event.reason, f"{what} refused: {event.reason}")
    return Problem(422, "rejected", f"{what} refused")


def moved(events: list[Any], seq: int, ts_ms: int, trigger: str) -> TransferRecord | None:
    """The one transfer a transfer command made (`tr_<seq>_0`), None if it was refused."""
    for event in events:
        if isinstance(event, UnitsTransferred):
            return TransferRecord(
                f"tr_{seq}_0",
                seq,
                0,
                ts_ms,
                event.account_id,
                event.instrument_id,
                event.from_account,
                event.to_account,
                event.quantity_units,
                trigger,
            )
    return None


@router.post(
    "/transfers/trading-to-consumption",
    response_model=None,
    openapi_extra=docs.request_body(docs.UnitsBody),
    responses=docs.TRANSFER_RESPONSES,
)
async def trading_to_consumption(request: Request, signed: Signed) -> Response:
    try:
        market = params.market(request)
        body = params.json_body(await request.body(), TRANSFER_KEYS)
        instrument_id = params.instrument_id(body)
        quantity = params.quantity(body)
        command = TransferToConsumption(signed.account_id, InstrumentId(instrument_id), quantity)
        outcome = await market.submit(command)
        record = moved(outcome.events, outcome.seq, outcome.ts_ms, "transfer")
        if record is None:
            raise refusal(outcome.events, "transfer")
        data = transfer_json(market.sequencer.exchange.state, record)
        body = {"status": "success", "transfer_id": record.transfer_id, "data": data}
        return JSONResponse(body)
    except Problem as problem:
        return problem.response()


@router.post(
    "/transfers/consumption-to-trading",
    response_model=None,
    openapi_extra=docs.request_body(docs.UnitsBody),
    responses={422: docs.TRANSFER_RESPONSES[422]},
)
async def consumption_to_trading(request: Request, signed: Signed) -> Response:
    """Always refused by the core: tokens in consumption cannot go back to be resold."""
    try:
        market = params.market(request)
        body = params.json_body(await request.body(), TRANSFER_KEYS)
        instrument_id = params.instrument_id(body)
        quantity = params.quantity(body)
        command = TransferToTrading(signed.account_id, InstrumentId(instrument_id), quantity)
        outcome = await market.submit(command)
        raise refusal(outcome.events, "transfer")
    except Problem as problem:
        return problem.response()


_HISTORY_FILTERS = ("instrument_id", "market_id")


async def _transfer_history(request: Request, signed: Signed) -> Response:
    """The caller's transfers, newest first; `instrument_id`/`market_id`; `next`/`prev`."""
    try:
        market, model = await params.history(request)
        state = market.sequencer.exchange.state
        found = params.filters(request.query_params, _HISTORY_FILTERS)
        wanted = found.get("instrument_id") or found.get("market_id")
        records, paging = params.page(
            model.transfers_of(signed.account_id),
            lambda r: (r.seq, r.position),
            request.query_params,
            lambda r: wanted is None or r.instrument_id == wanted,
        )
        rows = [transfer_json(state, r) for r in records]
        return JSONResponse({"data": rows, "paging": paging})
    except Problem as problem:
        return problem.response()


router.add_api_route("/transfer-histories", _transfer_history, methods=["GET"], response_model=None)
router.add_api_route(
    "/transfers/histories", _transfer_history, methods=["GET"], response_model=None
)

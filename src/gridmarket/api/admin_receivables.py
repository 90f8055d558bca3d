"""The operator's side of substitution receivables (DESIGN section 9, `core.receivables`).

When a supplier whose lot another supplier delivered cannot pay the substitute in full, the
operator pays the rest and the supplier owes it: it may not issue units, withdraw or be paid
out until that is paid. A deposit to the supplier pays it first, on its own; USD the supplier
already holds (sale proceeds) pays it when the operator asks here.

    GET  /v1/admin/receivables                           suppliers that owe, by account id
    POST /v1/admin/accounts/{id}/receivable/settle       pay it from the supplier's USD

The list answers `{"data": [{account_id, receivable_usd, receivable_usd_micros}],
"total_usd", "total_usd_micros"}`. Settling answers `{"data": {account_id, paid_usd,
receivable_usd (still owed), usd_available, seq}}`; it pays all that is owed or as much as the
supplier has available. Operator token required (see `api.admin`); unknown account: 404;
nothing owed (`no_receivable`) or no USD available (`insufficient_funds`): 422 with that code.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from gridmarket.adapters import registry
from gridmarket.api.admin import Market, _OperatorRoute
from gridmarket.api.errors import error_response
from gridmarket.api.money import format_usd_micros
from gridmarket.core.commands import SettleReceivable
from gridmarket.core.events import ReceivableSettled, Rejected
from gridmarket.core.exchange import MAX_ACCOUNT_ID_LENGTH
from gridmarket.core.ids import AccountId

router = APIRouter(prefix="/v1/admin", route_class=_OperatorRoute)


@router.get("/receivables")
async def list_receivables(market: Market) -> dict[str, Any]:
    """Every supplier that owes the operator for substitutions, in account id order."""
    state = market.sequencer.exchange.state
    owing = sorted(
        (account.account_id, account.receivable_usd_micros)
        for account in state.accounts.values()
        if account.receivable_usd_micros
    )
    total = sum(owed for _, owed in owing)
    return {
        "data": [
            {
                "account_id": account_id,
                "receivable_usd": format_usd_micros(owed),
                "receivable_usd_micros": owed,
            }
            for account_id, owed in owing
        ],
        "total_usd": format_usd_micros(total),
        "total_usd_micros": total,
    }


@router.post("/accounts/{account_id}/receivable/settle", response_model=None)
async def settle_receivable(
    account_id: Annotated[str, Path(max_length=MAX_ACCOUNT_ID_LENGTH)], market: Market
) -> Any:
    """Pay what the supplier owes from its available USD: all of it, or what it has."""
    found = await asyncio.to_thread(registry.get_account, market.store.engine, account_id)
    if found is None:
        raise HTTPException(404, detail=f"no account {account_id!r}")
    outcome = await market.submit(SettleReceivable(AccountId(account_id)))
    for event in outcome.events:
        if isinstance(event, Rejected):
            return error_response(422, f"settlement refused: {event.reason}", event.reason)
    (paid,) = [e for e in outcome.events if isinstance(e, ReceivableSettled)]
    available = market.sequencer.exchange.balance(f"{account_id}/usd/available")
    return {
        "data": {
            "account_id": account_id,
            "paid_usd": format_usd_micros(paid.amount_usd_micros),
            "receivable_usd": format_usd_micros(paid.outstanding_usd_micros),
            "usd_available": format_usd_micros(available),
            "seq": outcome.seq,
        }
    }

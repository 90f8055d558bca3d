"""The operator's side of Auto-Reload: an account's payment method (the ledger-only adapter).

    POST /v1/admin/accounts/{id}/payment-method  {"allowance_usd": "50"}   (body optional)
    GET  /v1/admin/accounts/{id}/payment-method

On a self-hosted server the "payment method" is an allowance the operator grants: Auto-Reload
charges draw it down and are declined once it is exhausted (`adapters.payment`). POST sets
the allowance (`"0"` removes what is left; no `allowance_usd` keeps it) and ALWAYS clears a
standing decline, which is how a declined account gets out of its 402s: top the allowance up,
or just acknowledge the fix. Both answer `{"data": {account_id, allowance_usd, declined,
decline_reason, declined_at, updated_at}}`; `allowance_usd` is null when no method is set.
Operator token required (see `api.admin`); unknown account: 404; bad body: 422.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BeforeValidator

from gridmarket.adapters import payment, registry
from gridmarket.adapters.payment import PaymentMethodRecord
from gridmarket.api import wire
from gridmarket.api.admin import Market, _OperatorRoute, _Strict
from gridmarket.api.money import format_usd_micros, parse_usd_micros
from gridmarket.core.exchange import MAX_ACCOUNT_ID_LENGTH
from gridmarket.service.sequencer import system_clock_ms

router = APIRouter(prefix="/v1/admin", route_class=_OperatorRoute)


_ZERO_USD = re.compile(r"0(\.0{1,6})?")


def _allowance(text: object) -> int:
    """Micro-USD from a decimal string, zero allowed (it empties the allowance)."""
    if isinstance(text, str) and _ZERO_USD.fullmatch(text):
        return 0
    return parse_usd_micros(text)


class PaymentMethodBody(_Strict):
    allowance_usd: (
        Annotated[int, BeforeValidator(_allowance, json_schema_input_type=str)] | None
    ) = None


def _view(account_id: str, method: PaymentMethodRecord | None) -> dict[str, Any]:
    if method is None:
        return {
            "account_id": account_id,
            "allowance_usd": None,
            "declined": False,
            "decline_reason": None,
            "declined_at": None,
            "updated_at": None,
        }
    allowance = method.allowance_usd_micros
    return {
        "account_id": account_id,
        "allowance_usd": None if allowance is None else format_usd_micros(allowance),
        "declined": method.declined_at_ms is not None,
        "decline_reason": method.decline_reason,
        "declined_at": None
        if method.declined_at_ms is None
        else wire.timestamp(method.declined_at_ms),
        "updated_at": wire.timestamp(method.updated_at_ms),
    }


async def _known(market: Market, account_id: str) -> None:
    found = await asyncio.to_thread(registry.get_account, market.store.engine, account_id)
    if found is None:
        raise HTTPException(404, detail=f"no account {account_id!r}")


AccountPath = Annotated[str, Path(max_length=MAX_ACCOUNT_ID_LENGTH)]


@router.post("/accounts/{account_id}/payment-method")
async def set_payment_method(
    account_id: AccountPath,
    market: Market,
    request: Request,
    body: PaymentMethodBody | None = None,
) -> dict[str, Any]:
    """Set the ledger-only allowance (optional) and clear a standing decline."""
    allowance = None if body is None else body.allowance_usd
    limit = market.sequencer.exchange.state.config.max_usd_move_usd_micros
    if allowance is not None and allowance > limit:
        raise HTTPException(422, detail=f"allowance above the limit of {format_usd_micros(limit)}")
    await _known(market, account_id)
    method = await asyncio.to_thread(
        payment.set_method, market.store.engine, account_id, allowance, system_clock_ms()
    )
    supply = getattr(request.app.state, "token_supply", None)
    clear = getattr(supply, "clear_decline", None)
    if clear is not None:
        clear(account_id)
    return {"data": _view(account_id, method)}


@router.get("/accounts/{account_id}/payment-method")
async def get_payment_method(account_id: AccountPath, market: Market) -> dict[str, Any]:
    await _known(market, account_id)
    method = await asyncio.to_thread(payment.get_method, market.store.engine, account_id)
    return {"data": _view(account_id, method)}

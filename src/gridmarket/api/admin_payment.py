"""The operator's side of Auto-Reload: an account's payment method.

    POST /v1/admin/accounts/{id}/payment-method  {"allowance_usd": "50"}   (body optional)
    POST /v1/admin/accounts/{id}/payment-method
         {"stripe_customer": "cus_...", "stripe_payment_method": "pm_..."}
    GET  /v1/admin/accounts/{id}/payment-method

Which part of the method counts depends on the server's payment provider (settings): with the
ledger-only adapter (the default) the "payment method" is an allowance the operator grants,
which Auto-Reload charges draw down and are declined once it is exhausted
(`adapters.payment`); with Stripe (`adapters.stripe_payment`) it is the account's Stripe
customer and the saved payment method charged off-session, given together (ids as Stripe
makes them: `cus_` then letters and digits, `pm_` then letters, digits and `_`, at most 255
characters). POST sets what it is given (an allowance of `"0"` removes what is left; what is
not given is kept) and ALWAYS clears a standing decline, which is how a declined account gets
out of its 402s: fix the method, or just acknowledge the fix. Both answer `{"data":
{account_id, allowance_usd, stripe_customer, stripe_payment_method, declined, decline_reason,
declined_at, updated_at}}`; null for what is not set. Operator token required (see
`api.admin`); unknown account: 404; bad body: 422.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BeforeValidator, StringConstraints, model_validator

from gridmarket.adapters import payment, registry
from gridmarket.adapters.payment import PaymentMethodRecord, StripeMethod
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


#: Stripe's ids: a type prefix, then letters and digits (test payment methods such as
#: `pm_card_visa` have underscores); Stripe's ids are at most 255 characters.
MAX_STRIPE_ID_CHARS = 255
StripeCustomer = Annotated[
    str, StringConstraints(pattern=r"^cus_[A-Za-z0-9]+$", max_length=MAX_STRIPE_ID_CHARS)
]
StripePaymentMethod = Annotated[
    str, StringConstraints(pattern=r"^pm_[A-Za-z0-9_]+$", max_length=MAX_STRIPE_ID_CHARS)
]


class PaymentMethodBody(_Strict):
    allowance_usd: (
        Annotated[int, BeforeValidator(_allowance, json_schema_input_type=str)] | None
    ) = None
    stripe_customer: StripeCustomer | None = None
    stripe_payment_method: StripePaymentMethod | None = None

    @model_validator(mode="after")
    def _stripe_ids_together(self) -> PaymentMethodBody:
        if (self.stripe_customer is None) != (self.stripe_payment_method is None):
            raise ValueError("stripe_customer and stripe_payment_method go together")
        return self

    def stripe(self) -> StripeMethod | None:
        if self.stripe_customer is None or self.stripe_payment_method is None:
            return None
        return StripeMethod(self.stripe_customer, self.stripe_payment_method)


def _view(account_id: str, method: PaymentMethodRecord | None) -> dict[str, Any]:
    if method is None:
        return {
            "account_id": account_id,
            "allowance_usd": None,
            "stripe_customer": None,
            "stripe_payment_method": None,
            "declined": False,
            "decline_reason": None,
            "declined_at": None,
            "updated_at": None,
        }
    allowance = method.allowance_usd_micros
    return {
        "account_id": account_id,
        "allowance_usd": None if allowance is None else format_usd_micros(allowance),
        "stripe_customer": method.stripe_customer_id,
        "stripe_payment_method": method.stripe_payment_method_id,
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
    """Set the allowance and/or the Stripe method (both optional); clear a standing decline."""
    allowance = None if body is None else body.allowance_usd
    stripe = None if body is None else body.stripe()
    limit = market.sequencer.exchange.state.config.max_usd_move_usd_micros
    if allowance is not None and allowance > limit:
        raise HTTPException(422, detail=f"allowance above the limit of {format_usd_micros(limit)}")
    await _known(market, account_id)
    method = await asyncio.to_thread(
        payment.set_method, market.store.engine, account_id, allowance, system_clock_ms(), stripe
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

"""`GET /v1/me`: who the signing key belongs to, as The Grid's client reads it.

The client's `grid verify` and `grid system status` sign a GET `/me` and need a truthy `data`;
`grid verify` then requires `account_mode == "advanced"` to go on (grid-client-contract.md,
lines 248, 293 and 329-330). Gridmarket has no users beside accounts, so `user_id` is the
account id, and there is no e-mail address (`email` is null: the client falls back to
`user_id`). `capabilities` says what the account may do: every account consumes; Advanced
Mode accounts trade; suppliers supply.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from gridmarket.api import wire
from gridmarket.api.signed import Signed, SignedRoute

router = APIRouter(prefix="/v1", tags=["account"], route_class=SignedRoute)


def capabilities(mode: str, is_supplier: bool) -> list[str]:
    granted = ["consumption"]
    if mode == "advanced":
        granted.append("trading")
    if is_supplier:
        granted.append("supply")
    return granted


@router.get("/me", response_model=None)
async def me(signed: Signed) -> Response:
    """The signed-in account: id, name, mode and capabilities.

    From the record the key lookup read (`Signed.account`, cached with the key for a few
    seconds), not a query per request: a mode switch shows here as soon as it takes effect
    for signing, which is when it matters.
    """
    record = signed.account
    created_at = wire.timestamp(record.created_at_ms)
    data: dict[str, Any] = {
        "user_id": record.account_id,
        "id": record.account_id,
        "account_id": record.account_id,
        "name": record.name,
        "email": None,
        "email_verified": False,
        "accepted_terms": True,
        "account_mode": record.mode,
        "supplier": record.is_supplier,
        "capabilities": capabilities(record.mode, record.is_supplier),
        "created_at": created_at,
        "updated_at": created_at,
    }
    return JSONResponse({"data": data})

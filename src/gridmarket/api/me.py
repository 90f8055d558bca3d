"""`GET /v1/me`: who the signing key belongs to, as The Grid's client reads it.

The client's `grid verify` and `grid system status` sign a GET `/me` and need a truthy `data`;
`grid verify` then requires `account_mode == "advanced"` to go on (grid-client-contract.md,
lines 248, 293 and 329-330). Gridmarket has no users beside accounts, so `user_id` is the
account id, and there is no e-mail address (`email` is null: the client falls back to
`user_id`). `capabilities` says what the account may do: every account consumes; Advanced
Mode accounts trade; suppliers supply.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gridmarket.adapters import registry
from gridmarket.api import wire
from gridmarket.api.errors import Problem
from gridmarket.api.signed import Signed, SignedRoute
from gridmarket.service.market import MarketService

router = APIRouter(prefix="/v1", tags=["account"], route_class=SignedRoute)


def capabilities(mode: str, is_supplier: bool) -> list[str]:
    granted = ["consumption"]
    if mode == "advanced":
        granted.append("trading")
    if is_supplier:
        granted.append("supply")
    return granted


@router.get("/me", response_model=None)
async def me(request: Request, signed: Signed) -> Response:
    """The signed-in account: id, name, mode and capabilities."""
    market = request.app.state.market
    try:
        if not isinstance(market, MarketService):
            raise Problem(503, "service_unavailable", "the market service is not running")
        record = await asyncio.to_thread(
            registry.get_account, market.store.engine, signed.account_id
        )
        # A verified key always belongs to a registered account (the registry holds the key).
        assert record is not None, signed.account_id
    except Problem as problem:
        return problem.response()
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

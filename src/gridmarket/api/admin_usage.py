"""The operator's view of any account's usage receipts (the operator token, not a signature).

    GET /v1/admin/accounts/{account_id}/usage         as GET /v1/usage, for that account
    GET /v1/admin/accounts/{account_id}/usage/daily   as GET /v1/usage/daily

Same filters, paging and shapes as `api.usage` (which serves them); an account the registry
does not know is a 404 `account_not_found`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from gridmarket.adapters import registry
from gridmarket.api import usage
from gridmarket.api.admin import require_operator
from gridmarket.api.errors import Problem
from gridmarket.service.market import MarketService

MAX_ACCOUNT_ID_CHARS = 64


class _OperatorRoute(APIRoute):
    """Checks the operator token before anything else (as `api.admin` does)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            require_operator(request)
            return await handle(request)

        return checked


router = APIRouter(prefix="/v1/admin/accounts", route_class=_OperatorRoute, tags=["admin"])


async def _known(request: Request, account_id: str) -> None:
    market = request.app.state.market
    if not isinstance(market, MarketService):
        raise Problem(503, "service_unavailable", "the market service is not running")
    record = None
    if len(account_id) <= MAX_ACCOUNT_ID_CHARS:
        record = await asyncio.to_thread(registry.get_account, market.store.engine, account_id)
    if record is None:
        raise Problem(404, "account_not_found", f"account {account_id[:64]!r} not found")


@router.get("/{account_id}/usage", response_model=None)
async def account_usage(request: Request, account_id: str) -> Response:
    """An account's usage receipts, newest first, filtered and paged as GET /v1/usage."""
    try:
        await _known(request, account_id)
        return await usage.list_for(request, account_id)
    except Problem as problem:
        return problem.response()


@router.get("/{account_id}/usage/daily", response_model=None)
async def account_daily_usage(request: Request, account_id: str) -> Response:
    """An account's totals per UTC day, key and instrument, as GET /v1/usage/daily."""
    try:
        await _known(request, account_id)
        return await usage.daily_for(request, account_id)
    except Problem as problem:
        return problem.response()

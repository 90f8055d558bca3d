"""The operator's side of self-service: any account's keys, settings and money out.

Same rules as the signed routes (`api.key_ops`, `api.settings_ops`), with the operator token
(`api.admin.require_operator`, checked before the body is read) and the account in the path;
an unknown account is a 404 `account_not_found`. Differences: the operator may revoke an
account's last signing key, and may register a signing key without a public key (a new pair is
made; its `private_key` is in the answer, only there). Revocations answer 200 with the key.

    GET|POST    /v1/admin/accounts/{id}/api-keys          DELETE .../api-keys/{key_id}
    GET|POST    /v1/admin/accounts/{id}/signing-keys      DELETE .../signing-keys/{key_id}
    GET|PATCH   /v1/admin/accounts/{id}/settings
        PATCH {mode?, auto_transfer_enabled?, auto_buy_enabled?,
               auto_reload?: {enabled?, threshold?, amount?, monthly_limit?}}
        All validated first (a managed field set off in the resulting easy mode is a 403
        `mode_managed_setting` before anything changes), then applied: Auto-Reload, mode,
        auto-transfer, auto-buy. 200 with the settings as they now are.
    POST        /v1/admin/accounts/{id}/withdrawals       {"amount_usd": "12.50"}
    POST        /v1/admin/accounts/{id}/payouts           {"amount_usd": "12.50"}  (suppliers)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

from gridmarket.adapters import registry
from gridmarket.api import key_ops, settings_ops
from gridmarket.api.admin import require_operator
from gridmarket.api.bodies import boolean, json_object
from gridmarket.api.errors import Problem
from gridmarket.core.exchange import MAX_ACCOUNT_ID_LENGTH
from gridmarket.core.ids import AccountId
from gridmarket.service.market import MarketService

SETTINGS_FIELDS = ("mode", "auto_transfer_enabled", "auto_buy_enabled", "auto_reload")


class _OperatorRoute(APIRoute):
    """Checks the operator token before anything else (as `api.admin` does)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            require_operator(request)
            return await handle(request)

        return checked


router = APIRouter(prefix="/v1/admin/accounts", route_class=_OperatorRoute, tags=["admin"])

Work = Callable[[MarketService, AccountId], Awaitable[Response]]


async def _answer(request: Request, account_id: str, work: Work) -> Response:
    """Run `work` on a registered account; a `Problem` becomes its response."""
    try:
        market = request.app.state.market
        if not isinstance(market, MarketService):
            raise Problem(503, "service_unavailable", "the market is not running")
        found = None
        if len(account_id) <= MAX_ACCOUNT_ID_LENGTH:
            found = await asyncio.to_thread(registry.get_account, market.store.engine, account_id)
        if found is None:
            raise Problem(404, "account_not_found", f"no account {account_id[:64]!r}")
        return await work(market, found.account_id)
    except Problem as problem:
        return problem.response()


def _data(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse({"data": data}, status_code)


# -- consumption keys ---------------------------------------------------------------------------


@router.get("/{account_id}/api-keys", response_model=None)
async def list_api_keys(request: Request, account_id: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        return _data(await key_ops.list_consumption_keys(market, account))

    return await _answer(request, account_id, work)


@router.post("/{account_id}/api-keys", response_model=None)
async def create_api_key(request: Request, account_id: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        body = json_object(await request.body(), ("api_key",))
        return _data(await key_ops.create_consumption_key(market, account, body), 201)

    return await _answer(request, account_id, work)


@router.delete("/{account_id}/api-keys/{key_id}", response_model=None)
async def revoke_api_key(request: Request, account_id: str, key_id: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        return _data(await key_ops.revoke_consumption_key(market, account, key_id))

    return await _answer(request, account_id, work)


# -- signing keys -------------------------------------------------------------------------------


@router.get("/{account_id}/signing-keys", response_model=None)
async def list_signing_keys(request: Request, account_id: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        return _data(await key_ops.list_signing_keys(market, account))

    return await _answer(request, account_id, work)


@router.post("/{account_id}/signing-keys", response_model=None)
async def add_signing_key(request: Request, account_id: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        body = json_object(await request.body(), ("signing_key",))
        key = await key_ops.add_signing_key(market, account, body, may_generate=True)
        return _data(key, 201)

    return await _answer(request, account_id, work)


@router.delete("/{account_id}/signing-keys/{key_ref:path}", response_model=None)
async def revoke_signing_key(request: Request, account_id: str, key_ref: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        revoked = await key_ops.revoke_signing_key(
            request.app.state, market, account, key_ref, keep_one=False
        )
        return _data(revoked)

    return await _answer(request, account_id, work)


# -- settings -----------------------------------------------------------------------------------


@router.get("/{account_id}/settings", response_model=None)
async def read_settings(request: Request, account_id: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        return _data(await settings_ops.read_settings(market, account))

    return await _answer(request, account_id, work)


@router.patch("/{account_id}/settings", response_model=None)
async def patch_settings(request: Request, account_id: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        state = request.app.state
        body = json_object(await request.body(), SETTINGS_FIELDS)
        new_mode = settings_ops.mode_value(body["mode"]) if "mode" in body else None
        transfer = body.get("auto_transfer_enabled")
        if transfer is not None:
            transfer = boolean(transfer, "auto_transfer_enabled")
        buy = body.get("auto_buy_enabled")
        if buy is not None:
            buy = boolean(buy, "auto_buy_enabled")
        reload = body.get("auto_reload")
        if reload is not None and not isinstance(reload, dict):
            raise Problem(422, "validation_error", "auto_reload: must be a JSON object")
        current = await settings_ops.read_settings(market, account)
        if (new_mode or current["account_mode"]) == "easy":
            for field, value in (("auto_transfer_enabled", transfer), ("auto_buy_enabled", buy)):
                if value is False:
                    raise Problem(
                        403,
                        settings_ops.MODE_MANAGED_CODE,
                        f"{field} is managed by Auto Mode (easy): it stays on",
                    )
        if reload is not None:
            await settings_ops.patch_auto_reload(state, market, account, reload)
        if new_mode is not None:
            await settings_ops.set_mode(state, market, account, new_mode)
        if transfer is not None:
            await settings_ops.set_auto_transfer(state, market, account, transfer)
        if buy is not None:
            await settings_ops.set_auto_buy(state, market, account, buy)
        return _data(await settings_ops.read_settings(market, account))

    return await _answer(request, account_id, work)


# -- money out ----------------------------------------------------------------------------------


@router.post("/{account_id}/withdrawals", response_model=None)
async def withdraw(request: Request, account_id: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        body = json_object(await request.body(), ("amount_usd",))
        return _data(await settings_ops.move_usd_out(market, account, body, "withdrawal"), 201)

    return await _answer(request, account_id, work)


@router.post("/{account_id}/payouts", response_model=None)
async def payout(request: Request, account_id: str) -> Response:
    async def work(market: MarketService, account: AccountId) -> Response:
        body = json_object(await request.body(), ("amount_usd",))
        return _data(await settings_ops.move_usd_out(market, account, body, "payout"), 201)

    return await _answer(request, account_id, work)

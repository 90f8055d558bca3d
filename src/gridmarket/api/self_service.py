"""Self-service on the signed Trading API: an account's own keys, settings and money out.

    GET    /v1/api-keys                                  {"data": [ApiKey]}
    POST   /v1/api-keys  {"api_key": {name, expires_at?, spend_cap_tokens?}}
                                                         201 {"data": ApiKey + "key"} (shown once)
    DELETE /v1/api-keys/{id}                             204
    GET    /v1/signing-keys                              {"data": [SigningKey]}
    POST   /v1/signing-keys  {"signing_key": {label, public_key}}   201 {"data": SigningKey}
    DELETE /v1/signing-keys/{key_id or fingerprint}      204
    GET    /v1/self/system-settings                      {"data": Settings}
    POST   /v1/self/system-settings/account-mode  {"mode": "easy"|"advanced"}    204
    PATCH  /v1/self/system-settings/auto_reload   {enabled?, threshold?, amount?, monthly_limit?}
    PATCH  /v1/self/system-settings/auto-transfer {auto_transfer_enabled}
                                                  (or {auto_transfer_override: null}: the mode's)
    PATCH  /v1/self/system-settings/auto-buy      {auto_buy_enabled} (or auto_top_up_enabled)
    POST   /v1/self/system-settings/auto-top-up/toggle
    POST   /v1/withdrawals  {"amount_usd": "12.50"}      201 {"data": Withdrawal}
    POST   /v1/payouts      {"amount_usd": "12.50"}      201 {"data": Payout} (suppliers)

The PATCH and toggle routes answer 200 with the settings as they now are. Every route is
signed (`api.signed`) and acts on the signing account only: another account's key is a 404
like an unknown one. The rules (limits, validation, modes) are in `api.key_ops` and
`api.settings_ops`, shared with the operator's routes (`api.admin_keys`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gridmarket.api import key_ops, settings_ops
from gridmarket.api import write_docs as docs
from gridmarket.api.bodies import boolean, invalid, json_object
from gridmarket.api.errors import Problem
from gridmarket.api.signed import Signed, SignedRoute
from gridmarket.service.market import MarketService

router = APIRouter(prefix="/v1", tags=["self-service"], route_class=SignedRoute)

Work = Callable[[MarketService], Awaitable[Response]]


async def _answer(request: Request, work: Work) -> Response:
    try:
        market = request.app.state.market
        if not isinstance(market, MarketService):
            raise Problem(503, "service_unavailable", "the market service is not running")
        return await work(market)
    except Problem as problem:
        return problem.response()


def _data(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse({"data": data}, status_code)


# -- consumption keys ---------------------------------------------------------------------------


@router.get("/api-keys", response_model=None)
async def list_api_keys(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        return _data(await key_ops.list_consumption_keys(market, signed.account_id))

    return await _answer(request, work)


@router.post(
    "/api-keys",
    status_code=201,
    response_model=None,
    openapi_extra=docs.API_KEY_BODY,
    responses=docs.self_service(201, "The new key, its plaintext in `key` (shown once)."),
)
async def create_api_key(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        body = json_object(await request.body(), ("api_key",))
        key = await key_ops.create_consumption_key(market, signed.account_id, body)
        return _data(key, 201)

    return await _answer(request, work)


@router.delete("/api-keys/{key_id}", status_code=204, response_model=None)
async def revoke_api_key(request: Request, key_id: str, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        await key_ops.revoke_consumption_key(market, signed.account_id, key_id)
        return Response(status_code=204)

    return await _answer(request, work)


# -- signing keys -------------------------------------------------------------------------------


@router.get("/signing-keys", response_model=None)
async def list_signing_keys(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        return _data(await key_ops.list_signing_keys(market, signed.account_id))

    return await _answer(request, work)


@router.post(
    "/signing-keys",
    status_code=201,
    response_model=None,
    openapi_extra=docs.SIGNING_KEY_BODY,
    responses=docs.self_service(201, "The registered key.", 409),
)
async def add_signing_key(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        body = json_object(await request.body(), ("signing_key",))
        key = await key_ops.add_signing_key(market, signed.account_id, body, may_generate=False)
        return _data(key, 201)

    return await _answer(request, work)


@router.delete("/signing-keys/{key_ref:path}", status_code=204, response_model=None)
async def revoke_signing_key(request: Request, key_ref: str, signed: Signed) -> Response:
    """By `key_id` (`sk_...`) or by fingerprint (its `/` percent-encoded or not)."""

    async def work(market: MarketService) -> Response:
        await key_ops.revoke_signing_key(
            request.app.state, market, signed.account_id, key_ref, keep_one=True
        )
        return Response(status_code=204)

    return await _answer(request, work)


# -- settings -----------------------------------------------------------------------------------


async def _settings(market: MarketService, account_id: str) -> Response:
    return _data(await settings_ops.read_settings(market, account_id))


@router.get("/self/system-settings", response_model=None)
async def read_settings(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        return await _settings(market, signed.account_id)

    return await _answer(request, work)


@router.post(
    "/self/system-settings/account-mode",
    status_code=204,
    response_model=None,
    openapi_extra=docs.ACCOUNT_MODE_BODY,
    responses=docs.self_service(204, "Switched; no body."),
)
async def set_account_mode(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        body = json_object(await request.body(), ("mode",))
        mode = settings_ops.mode_value(body.get("mode"))
        await settings_ops.set_mode(request.app.state, market, signed.account_id, mode)
        return Response(status_code=204)

    return await _answer(request, work)


@router.patch(
    "/self/system-settings/auto_reload",
    response_model=None,
    openapi_extra=docs.AUTO_RELOAD_BODY,
    responses=docs.self_service(200, "The settings as they now are."),
)
async def patch_auto_reload(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        body = json_object(await request.body(), settings_ops.AUTO_RELOAD_FIELDS)
        await settings_ops.patch_auto_reload(request.app.state, market, signed.account_id, body)
        return await _settings(market, signed.account_id)

    return await _answer(request, work)


def auto_transfer_value(body: dict[str, Any]) -> bool | None:
    """`{"auto_transfer_enabled": bool}`, or `{"auto_transfer_override": null}` (the mode's)."""
    if len(body) != 1:
        raise invalid("body", "give auto_transfer_enabled, or auto_transfer_override: null")
    if "auto_transfer_override" in body:
        if body["auto_transfer_override"] is not None:
            raise invalid("auto_transfer_override", "only null (follow the mode) is accepted")
        return None
    return boolean(body["auto_transfer_enabled"], "auto_transfer_enabled")


@router.patch(
    "/self/system-settings/auto-transfer",
    response_model=None,
    openapi_extra=docs.AUTO_TRANSFER_BODY,
    responses=docs.self_service(200, "The settings as they now are.", 403),
)
async def patch_auto_transfer(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        fields = ("auto_transfer_enabled", "auto_transfer_override")
        enabled = auto_transfer_value(json_object(await request.body(), fields))
        await settings_ops.set_auto_transfer(request.app.state, market, signed.account_id, enabled)
        return await _settings(market, signed.account_id)

    return await _answer(request, work)


def auto_buy_value(body: dict[str, Any]) -> bool:
    """`{"auto_buy_enabled": bool}`, or The Grid's name, `{"auto_top_up_enabled": bool}`."""
    if len(body) != 1:
        raise invalid("body", "give auto_buy_enabled (or auto_top_up_enabled)")
    (field, value), *_ = body.items()
    return boolean(value, field)


@router.patch(
    "/self/system-settings/auto-buy",
    response_model=None,
    openapi_extra=docs.AUTO_BUY_BODY,
    responses=docs.self_service(200, "The settings as they now are.", 403),
)
async def patch_auto_buy(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        fields = ("auto_buy_enabled", "auto_top_up_enabled")
        enabled = auto_buy_value(json_object(await request.body(), fields))
        await settings_ops.set_auto_buy(request.app.state, market, signed.account_id, enabled)
        return await _settings(market, signed.account_id)

    return await _answer(request, work)


@router.post("/self/system-settings/auto-top-up/toggle", response_model=None)
async def toggle_auto_top_up(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        await settings_ops.set_auto_buy(request.app.state, market, signed.account_id, None)
        return await _settings(market, signed.account_id)

    return await _answer(request, work)


# -- money out ----------------------------------------------------------------------------------


@router.post(
    "/withdrawals",
    status_code=201,
    response_model=None,
    openapi_extra=docs.AMOUNT_BODY,
    responses=docs.self_service(201, "The withdrawal."),
)
async def withdraw(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        body = json_object(await request.body(), ("amount_usd",))
        record = await settings_ops.move_usd_out(market, signed.account_id, body, "withdrawal")
        return _data(record, 201)

    return await _answer(request, work)


@router.post(
    "/payouts",
    status_code=201,
    response_model=None,
    openapi_extra=docs.AMOUNT_BODY,
    responses=docs.self_service(201, "The payout."),
)
async def payout(request: Request, signed: Signed) -> Response:
    async def work(market: MarketService) -> Response:
        body = json_object(await request.body(), ("amount_usd",))
        record = await settings_ops.move_usd_out(market, signed.account_id, body, "payout")
        return _data(record, 201)

    return await _answer(request, work)

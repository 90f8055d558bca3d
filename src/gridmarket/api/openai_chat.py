"""The OpenAI-shaped consumption surface: point the OpenAI SDK at `http://host:port/v1`.

    POST /v1/chat/completions   Authorization: Bearer <consumption key>
    GET  /v1/models             the instruments, in OpenAI's list shape (a key is needed too)

`model` is an instrument id (any case); the answer's `model` echoes it. The gateway proxies
(no 307 redirect), so plain curl works:

    curl http://127.0.0.1:8000/v1/chat/completions -H "Authorization: Bearer $KEY" \
         -d '{"model": "text-local", "messages": [{"role": "user", "content": "Hi"}]}'

Streaming answers are SSE: `data: {chunk}\\n\\n` ... `data: [DONE]\\n\\n`, no `id:` fields.
While the first token is awaited, the response is held back for `HOLD_FIRST_CHUNK_S`, so an
error found before it (no supplier, a refused request) still gets its own status; after
that the stream starts with a `: ping` comment, repeated every `PING_EVERY_S` until the first
chunk, and an error is sent in-band (`data: {"error": {...}}`, no `[DONE]`), as is any
failure after the first chunk. Every answer carries `x-request-id`.

Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`: 400 malformed
body or wrong type, 401 missing/unknown/revoked/expired key, 402 no tokens
(`insufficient_tokens`) or the key's spend cap (`spend_cap_reached`), 404 unknown model,
422 value out of range or unsupported feature, 429 rate limit (with `Retry-After`), 500,
503 no supplier or the market is overloaded (with `Retry-After`). Bodies over 1 MiB are
refused (413) before they are read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gridmarket.api.metrics import gateway_metrics
from gridmarket.gateway.contract import GatewayError, StreamInterrupted
from gridmarket.gateway.service import Gateway
from gridmarket.gateway.suppliers import (
    add_configured,
    check_supplier_accounts,
    directory_from_settings,
)
from gridmarket.service.market import MarketService

log = logging.getLogger(__name__)

HOLD_FIRST_CHUNK_S = 2.0
PING_EVERY_S = 2.0
#: When the instrument list was "created", for `GET /v1/models` (Gridmarket's first release).
MODELS_CREATED_S = 1_764_000_000
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's lifespan, after `app.state.market` is set: the gateway's life."""
    market = app.state.market
    directory = getattr(app.state, "supplier_directory", None)
    if directory is None:
        directory = directory_from_settings(app.state.settings)
        app.state.supplier_directory = directory
    else:  # made earlier (by another part of the server): the configured endpoints join it
        add_configured(directory, app.state.settings)
    if not isinstance(market, MarketService):
        app.state.gateway = None
        yield
        return
    check_supplier_accounts(market, directory)
    gateway = Gateway(
        market,
        directory,
        # Auto Mode's buyer (bootstrap puts it there; a bare app has none: nothing is bought).
        token_supply=getattr(app.state, "token_supply", None),
        observer=gateway_metrics(app),
        calls_per_minute=app.state.settings.consumption_calls_per_minute,
    )
    app.state.gateway = gateway
    warm = asyncio.create_task(gateway.start(), name="gridmarket-tokenizer")
    try:
        yield
    finally:
        app.state.gateway = None
        warm.cancel()
        await gateway.aclose()


router = APIRouter(prefix="/v1", tags=["consumption (OpenAI)"], lifespan=_lifespan)


def openai_error(
    status: int,
    code: str | None,
    message: str,
    *,
    param: str | None = None,
    request_id: str | None = None,
    retry_after_s: int | None = None,
) -> JSONResponse:
    headers = {}
    if request_id:
        headers["x-request-id"] = request_id
    if retry_after_s is not None:
        headers["retry-after"] = str(retry_after_s)
    body = {"error": _error_object(status, code, message, param)}
    return JSONResponse(body, status_code=status, headers=headers)


def _error_object(status: int, code: str | None, message: str, param: str | None) -> Any:
    kind = _TYPES.get(status, "server_error")
    return {"message": message, "type": kind, "param": param, "code": code}


def _gateway_error(error: GatewayError, request_id: str) -> JSONResponse:
    retry = error.retry_after_s
    if retry is None and error.status in (429, 503):
        retry = 1
    return openai_error(
        error.status,
        error.code,
        error.message,
        param=error.param,
        request_id=request_id,
        retry_after_s=retry,
    )


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _running(request: Request) -> Gateway:
    gateway: Gateway | None = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise GatewayError("overloaded", "service_unavailable", "the server is not running")
    return gateway


@router.get("/models", response_model=None)
async def list_models(request: Request) -> Response:
    request_id = secrets.token_hex(12)
    try:
        gateway = _running(request)
        await gateway.authenticate(_bearer(request))
        instruments = gateway.instruments()
    except GatewayError as error:
        return _gateway_error(error, request_id)
    data = [
        {
            "id": instrument.instrument_id,
            "object": "model",
            "created": MODELS_CREATED_S,
            "owned_by": "gridmarket",
            "display_name": instrument.name,
        }
        for instrument in instruments
    ]
    return JSONResponse({"object": "list", "data": data}, headers={"x-request-id": request_id})


@router.post("/chat/completions", response_model=None)
@router.post("/chat/completions/", response_model=None, include_in_schema=False)
async def chat_completions(request: Request) -> Response:
    request_id = secrets.token_hex(12)
    try:
        gateway = _running(request)
        caller = await gateway.authenticate(_bearer(request))
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise GatewayError(
                "invalid_request", "invalid_json", "the request body is not valid JSON"
            ) from None
        if not isinstance(body, dict):
            raise GatewayError("invalid_request", "invalid_type", "the body must be an object")
        if body.get("stream") is True:
            return await _stream(gateway, caller, body, request_id)
        answer = await gateway.chat(caller, body, request_id=request_id)
    except GatewayError as error:
        return _gateway_error(error, request_id)
    except Exception:  # a bug: logged, and answered in the surface's own shape
        log.exception("request %s failed", request_id)
        return openai_error(500, "internal_error", "internal error", request_id=request_id)
    return JSONResponse(answer, headers={"x-request-id": request_id})


def _sse(data: Any) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


async def _stream(gateway: Gateway, caller: Any, body: dict[str, Any], request_id: str) -> Response:
    chunks = gateway.chat_stream(caller, body, request_id=request_id)
    first: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(anext(chunks))
    done, _ = await asyncio.wait({first}, timeout=HOLD_FIRST_CHUNK_S)
    if done and first.exception() is not None:
        await _close(chunks)
        error = first.exception()
        if isinstance(error, GatewayError):
            return _gateway_error(error, request_id)
        if isinstance(error, StopAsyncIteration):
            raise GatewayError("upstream", "empty_stream", "the stream ended before it began")
        assert error is not None
        raise error
    headers = {"x-request-id": request_id, "cache-control": "no-cache"}
    return StreamingResponse(
        _events(first, chunks, request_id), media_type="text/event-stream", headers=headers
    )


async def _events(
    first: asyncio.Future[dict[str, Any]], chunks: AsyncIterator[dict[str, Any]], request_id: str
) -> AsyncIterator[bytes]:
    try:
        while not first.done():  # the first token is late: keep the connection alive
            yield b": ping\n\n"
            await asyncio.wait({first}, timeout=PING_EVERY_S)
        try:
            yield _sse(first.result())
            async for chunk in chunks:
                yield _sse(chunk)
        except StreamInterrupted as interrupted:
            log.warning("request %s interrupted: %s", request_id, interrupted.message)
            yield _sse({"error": _error_object(500, interrupted.code, interrupted.message, None)})
            return
        except GatewayError as error:
            yield _sse({"error": _error_object(error.status, error.code, error.message, None)})
            return
        except Exception:  # a bug: logged, and in-band like any failure after the first byte
            log.exception("request %s failed mid-stream", request_id)
            yield _sse({"error": _error_object(500, "internal_error", "internal error", None)})
            return
        yield b"data: [DONE]\n\n"
    finally:
        if not first.done():
            first.cancel()
        await asyncio.shield(_close(chunks))


async def _close(chunks: AsyncIterator[dict[str, Any]]) -> None:
    aclose = getattr(chunks, "aclose", None)  # an async generator: ends the gateway's call
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:  # already closed, or closed while running: nothing to release
        log.debug("closing a chat stream", exc_info=True)

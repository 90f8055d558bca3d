"""The Anthropic surface: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Point the official `anthropic` SDK or Claude Code at the server (`ANTHROPIC_BASE_URL`) with
a consumption key (`ANTHROPIC_API_KEY`) and an instrument id as the model. Each request is
translated to an OpenAI chat request (`gateway.anthropic_translate`, which documents what does
not translate), served by the `ChatGateway` at `app.state.gateway`, and translated back.

- Auth: `x-api-key: <consumption key>`, or `Authorization: Bearer <key>`; 401 otherwise.
- `anthropic-version`, `anthropic-beta` and other `anthropic-*` request headers are accepted
  and not required; none changes what an OpenAI-compatible supplier does, so none is
  forwarded. `?beta=true` (the SDK's beta namespace, Claude Code) is accepted too.
- Every response carries `request-id`. Errors are Anthropic's
  `{"type": "error", "error": {"type", "message"}, "request_id"}` with its error type per
  status (`anthropic_translate.ERROR_TYPES`), `x-should-retry: true|false` (true exactly for
  408, 409, 429 and 5xx, which the SDKs then retry) and, on 429 and 503, `retry-after` in
  whole seconds.
- Streams (`"stream": true`) are `text/event-stream` with Anthropic's named events: nothing
  is sent until the gateway yields its first chunk, so a refusal before that is a plain
  HTTP error (and the gateway may fail over); after it, a failure is an in-band
  `event: error`, never a clean end. A `ping` event follows `message_start` and repeats
  every `PING_INTERVAL_S` seconds of silence. `message_start` carries the locally counted
  prompt tokens; `message_delta` the supplier's usage.
- `count_tokens` answers `{"input_tokens": N}`, counted locally with the instrument's
  tokenizer (`ChatGateway.count_prompt_tokens`), free and without calling a supplier.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gridmarket.gateway.anthropic_stream import Event, StreamTranslator
from gridmarket.gateway.anthropic_translate import (
    TranslationError,
    UpstreamShapeError,
    chat_completion_to_message,
    error_body,
    messages_request_to_openai,
    stop_sequences,
)
from gridmarket.gateway.contract import Caller, ChatGateway, GatewayError, StreamInterrupted

log = logging.getLogger(__name__)

router = APIRouter()

PING_INTERVAL_S = 10
MAX_API_KEY_CHARS = 512
RETRYABLE_STATUSES = frozenset({408, 409, 429})
DEFAULT_RETRY_AFTER_S = 1


class _Refusal(Exception):
    """An answer the surface gives itself (before or without the gateway)."""

    def __init__(self, status: int, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


@router.post("/v1/messages", response_model=None)
async def create_message(request: Request) -> Response:
    request_id = new_request_id()
    try:
        gateway, caller = await _admit(request)
        body = await _json_body(request)
        openai_request = messages_request_to_openai(body)
        stops = stop_sequences(body)
        if openai_request.get("stream"):
            return await _stream(gateway, caller, openai_request, stops, request_id)
        completion = await gateway.chat(caller, openai_request)
        message = chat_completion_to_message(
            completion,
            message_id=new_message_id(),
            model=_instrument(completion, openai_request),
            stops=stops,
        )
        return JSONResponse(message, headers={"request-id": request_id})
    except Exception as exc:  # every failure leaves in Anthropic's shape
        return _error_response(exc, request_id)


@router.post("/v1/messages/count_tokens", response_model=None)
async def count_tokens(request: Request) -> Response:
    request_id = new_request_id()
    try:
        gateway, _caller = await _admit(request)
        body = await _json_body(request)
        openai_request = messages_request_to_openai(body, count_only=True)
        tokens = await gateway.count_prompt_tokens(openai_request["model"], openai_request)
        return JSONResponse({"input_tokens": tokens}, headers={"request-id": request_id})
    except Exception as exc:
        return _error_response(exc, request_id)


async def _admit(request: Request) -> tuple[ChatGateway, Caller]:
    key = request.headers.get("x-api-key")
    if not key:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise _Refusal(401, "x-api-key header is required (a Gridmarket consumption key)")
    if len(key) > MAX_API_KEY_CHARS:
        raise _Refusal(401, "invalid x-api-key")
    gateway: ChatGateway | None = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise _Refusal(503, "the consumption gateway is not running on this server")
    return gateway, await gateway.authenticate(key)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise _Refusal(400, "the request body is not valid JSON") from None


def _instrument(completion: Any, openai_request: dict[str, Any]) -> str:
    """The instrument id the gateway resolved (its canonical case), else the one asked for."""
    model = completion.get("model") if isinstance(completion, dict) else None
    return model if isinstance(model, str) and model else str(openai_request["model"])


def _error_response(exc: Exception, request_id: str) -> JSONResponse:
    status, message, retry_after_s = _classify(exc)
    headers = {
        "request-id": request_id,
        "x-should-retry": "true" if status in RETRYABLE_STATUSES or status >= 500 else "false",
    }
    if status in (429, 503):
        headers["retry-after"] = str(max(retry_after_s or DEFAULT_RETRY_AFTER_S, 1))
    return JSONResponse(error_body(status, message, request_id), status, headers=headers)


def _classify(exc: Exception) -> tuple[int, str, int | None]:
    """`(status, message, retry_after_s)` for anything a request can fail with."""
    if isinstance(exc, GatewayError):
        return exc.status, exc.message, exc.retry_after_s
    if isinstance(exc, _Refusal):
        return exc.status, exc.message, exc.retry_after_s
    if isinstance(exc, TranslationError):
        return 400, exc.message, None
    if isinstance(exc, UpstreamShapeError):
        return 502, f"the supplier's answer could not be read: {exc}", None
    if isinstance(exc, StreamInterrupted):
        return _interrupted_status(exc), exc.message, None
    log.exception("anthropic surface: unexpected failure", exc_info=exc)
    return 500, "internal error", None


def _interrupted_status(exc: StreamInterrupted) -> int:
    if "overloaded" in exc.code:
        return 503
    return 504 if "timeout" in exc.code else 502


# --- streaming ---------------------------------------------------------------------------


async def _stream(
    gateway: ChatGateway,
    caller: Caller,
    openai_request: dict[str, Any],
    stops: list[str],
    request_id: str,
) -> Response:
    counted: list[int] = []  # the prompt's tokens, as the gateway counted them to commit
    chunks = gateway.chat_stream(caller, openai_request, prompt_counted=counted.append)
    chunks = chunks.__aiter__()
    try:
        # Nothing is sent before the first chunk: a GatewayError here is a plain HTTP error.
        first = await chunks.__anext__()
    except StopAsyncIteration:
        raise UpstreamShapeError("the supplier's stream was empty") from None
    assert counted, "the gateway streamed before counting the prompt"
    input_tokens = counted[0]
    translator = StreamTranslator(
        message_id=new_message_id(),
        model=_instrument(first, openai_request),
        input_tokens=input_tokens,
        stops=stops,
    )
    headers = {"request-id": request_id, "cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(
        _events(translator, first, chunks, request_id),
        media_type="text/event-stream",
        headers=headers,
    )


def _sse(events: list[Event]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
        for name, data in events
    )


PING: Event = ("ping", {"type": "ping"})


async def _next(chunks: AsyncIterator[dict[str, Any]]) -> dict[str, Any] | None:
    """The next chunk, None at the end (a task cannot end by raising StopAsyncIteration)."""
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


async def _events(
    translator: StreamTranslator,
    first: dict[str, Any],
    chunks: AsyncIterator[dict[str, Any]],
    request_id: str,
) -> AsyncIterator[bytes]:
    pending: asyncio.Task[dict[str, Any] | None] | None = None
    try:
        yield _sse([*translator.start(), PING, *translator.feed(first)])
        while True:
            pending = asyncio.ensure_future(_next(chunks))
            while not (await asyncio.wait({pending}, timeout=PING_INTERVAL_S))[0]:
                yield _sse([PING])
            chunk, pending = pending.result(), None
            if chunk is None:
                break
            events = translator.feed(chunk)
            if events:
                yield _sse(events)
        yield _sse(translator.finish())
    except Exception as exc:  # after the first byte, every failure is in-band
        status, message, _ = _classify(exc)
        yield _sse([("error", error_body(status, message, request_id))])
    finally:
        # Also on a client disconnect (cancellation): stop the gateway's stream, shielded so
        # the cleanup itself is not cancelled, and the gateway settles what was generated.
        with anyio.CancelScope(shield=True):
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

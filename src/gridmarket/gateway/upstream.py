"""The HTTP client to OpenAI-compatible upstreams (vLLM, llama.cpp server, Ollama, hosted APIs).

One `UpstreamClient` per server, used for every supplier endpoint, with `shards` (16)
`httpx2.AsyncClient`s that the calls take turns on, each with its share of the bounded
keep-alive connections. httpx2 is httpx's maintained successor (the official OpenAI and
Anthropic SDKs use it) with the same API. Why several: each time a pool hands out or takes
back a connection, it probes the socket of every idle connection it holds (a `poll` and
anyio's attribute machinery each), so one pool's cost per call grows with the concurrency. At
16 concurrent calls, 16 pools instead of one took the gateway from 275 to 370-510
non-streaming calls/s here (bench/gateway.py). Turns, not a choice by load: calls of a kind
last about as long as each other, and a turn costs nothing. Every connection may be kept
alive (512 in all, 32 a pool), so that turns do not close and reopen connections.

    client = UpstreamClient()
    answer = await client.complete(endpoint, body)          # a chat.completion dict
    stream = await client.open_stream(endpoint, body)       # first chunk already received
    async for chunk in stream: ...                          # chat.completion.chunk dicts
    await stream.aclose()                                   # closes the upstream response

Timeouts (`UpstreamTimeouts`): `connect_s` to open a connection; `first_byte_s` from sending
the request to the response headers and, when streaming, the first `data:` event; `idle_s`
between two reads of a stream; `total_s` for the whole call. Closing a stream (the caller went
away) closes the upstream response, so the upstream sees the disconnect and stops generating.

Failures are `UpstreamError`s with `retryable` saying whether another endpoint may be tried:
connect errors, timeouts before the first byte, 5xx, 429, and 401/403/404 (the endpoint is
misconfigured, not the request) are retryable; other 4xx (context length, content policy,
invalid parameters) are the request's fault and are not (`code` carries the upstream's code,
`context_length_exceeded` when recognised). `StreamBroken` is a failure after the first
chunk: the stream cannot be moved elsewhere.

The body is sent as given, but `model` is the endpoint's model and usage is always asked for
when streaming (`stream_options.include_usage`); dropping the usage-only chunk the caller did
not ask for is the gateway's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2

from gridmarket.gateway.contract import SupplierEndpoint

#: The largest non-streaming answer or single SSE line accepted from an upstream.
MAX_UPSTREAM_BODY_BYTES = 16 * 1024 * 1024
#: Connection pools the calls take turns on (see the module doc).
DEFAULT_POOL_SHARDS = 16
_RETRYABLE_4XX = frozenset({401, 403, 404, 408, 409, 429})
_CONTEXT_MARKERS = ("context_length", "context length", "maximum context", "too many tokens")


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    connect_s: float = 5.0
    first_byte_s: float = 60.0
    idle_s: float = 60.0
    total_s: float = 600.0


class UpstreamError(Exception):
    """A call failed before its first chunk reached the caller."""

    def __init__(
        self, code: str, message: str, *, retryable: bool, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        #: The upstream's HTTP status, None when no response came.
        self.status = status


class StreamBroken(Exception):
    """A stream failed after its first chunk (timeout, disconnect, bad data, an error event)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def upstream_body(endpoint: SupplierEndpoint, body: dict[str, Any], *, stream: bool) -> bytes:
    """The request as sent to `endpoint`: its model, and usage asked for when streaming."""
    sent = dict(body)
    sent["model"] = endpoint.model
    sent["stream"] = stream
    if stream:
        options = dict(sent.get("stream_options") or {})
        options["include_usage"] = True
        sent["stream_options"] = options
    else:
        sent.pop("stream_options", None)
    return json.dumps(sent, separators=(",", ":")).encode()


def _headers(endpoint: SupplierEndpoint) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if endpoint.api_key:
        headers["authorization"] = f"Bearer {endpoint.api_key}"
    return headers


def _error_from_response(status: int, raw: bytes) -> UpstreamError:
    message = raw[:2000].decode("utf-8", "replace") or f"upstream answered {status}"
    code = f"upstream_{status}"
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or message)[:2000]
        if isinstance(error.get("code"), str) and error["code"]:
            code = error["code"]
    elif isinstance(error, str):
        message = error[:2000]
    if status < 500 and status not in _RETRYABLE_4XX:
        lowered = f"{code} {message}".lower()
        if any(marker in lowered for marker in _CONTEXT_MARKERS):
            code = "context_length_exceeded"
        return UpstreamError(code, message, retryable=False, status=status)
    return UpstreamError(code, message, retryable=True, status=status)


class UpstreamClient:
    def __init__(
        self,
        timeouts: UpstreamTimeouts | None = None,
        *,
        max_connections: int = 512,
        max_keepalive_connections: int = 512,
        shards: int = DEFAULT_POOL_SHARDS,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeouts = timeouts or UpstreamTimeouts()
        t = self.timeouts
        assert shards > 0 and max_connections >= shards and max_keepalive_connections >= shards
        tls = httpx2.create_ssl_context()  # one for all: each costs tens of ms to load
        self._shards = [
            httpx2.AsyncClient(
                verify=tls,
                timeout=httpx2.Timeout(
                    connect=t.connect_s, read=t.idle_s, write=t.idle_s, pool=t.connect_s
                ),
                limits=httpx2.Limits(
                    max_connections=max_connections // shards,
                    max_keepalive_connections=max_keepalive_connections // shards,
                ),
                transport=transport,
                follow_redirects=False,
                trust_env=False,
            )
            for _ in range(shards)
        ]
        self._turns = itertools.cycle(self._shards)

    async def aclose(self) -> None:
        for client in self._shards:
            await client.aclose()

    async def _send(self, endpoint: SupplierEndpoint, raw: bytes) -> httpx2.Response:
        url = endpoint.base_url.rstrip("/") + "/chat/completions"
        client = next(self._turns)
        request = client.build_request("POST", url, content=raw, headers=_headers(endpoint))
        try:
            async with asyncio.timeout(self.timeouts.first_byte_s):
                return await client.send(request, stream=True)
        except TimeoutError:
            raise UpstreamError("upstream_timeout", "no answer in time", retryable=True) from None
        except httpx2.TimeoutException as exc:
            raise UpstreamError("upstream_timeout", repr(exc), retryable=True) from None
        except httpx2.HTTPError as exc:
            raise UpstreamError("upstream_unreachable", repr(exc), retryable=True) from None

    async def _fail_on_status(self, response: httpx2.Response) -> None:
        if response.status_code == 200:
            return
        try:
            raw = await _read_limited(response, 64 * 1024)
        except httpx2.HTTPError:
            raw = b""
        finally:
            await response.aclose()
        raise _error_from_response(response.status_code, raw)

    async def complete(self, endpoint: SupplierEndpoint, body: dict[str, Any]) -> dict[str, Any]:
        """A non-streaming completion: the upstream's `chat.completion` object."""
        started = time.monotonic()
        response = await self._send(endpoint, upstream_body(endpoint, body, stream=False))
        await self._fail_on_status(response)
        try:
            remaining = self.timeouts.total_s - (time.monotonic() - started)
            async with asyncio.timeout(max(remaining, 0.001)):
                raw = await _read_limited(response, MAX_UPSTREAM_BODY_BYTES)
        except (TimeoutError, httpx2.HTTPError) as exc:
            raise UpstreamError("upstream_broken", repr(exc), retryable=True) from None
        finally:
            await response.aclose()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
            raise UpstreamError("upstream_bad_answer", "not a chat.completion", retryable=True)
        return answer

    async def open_stream(self, endpoint: SupplierEndpoint, body: dict[str, Any]) -> UpstreamStream:
        """Start a streaming completion and wait for its first chunk (within `first_byte_s`).

        Raises `UpstreamError` if none comes; the stream then holds that chunk first."""
        started = time.monotonic()
        response = await self._send(endpoint, upstream_body(endpoint, body, stream=True))
        await self._fail_on_status(response)
        stream = UpstreamStream(response, started + self.timeouts.total_s)
        try:
            async with asyncio.timeout(self.timeouts.first_byte_s):
                await stream.prime()
        except TimeoutError:
            await stream.aclose()
            raise UpstreamError(
                "upstream_timeout", "no first token in time", retryable=True
            ) from None
        except StreamBroken as exc:
            await stream.aclose()
            retryable = exc.code != "upstream_error_event"
            raise UpstreamError(exc.code, exc.message, retryable=retryable) from None
        except BaseException:
            await stream.aclose()
            raise
        if stream.ended and stream._first is None:
            await stream.aclose()
            raise UpstreamError("upstream_empty", "the upstream sent no chunk", retryable=True)
        return stream


async def _read_limited(response: httpx2.Response, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        size += len(part)
        if size > limit:
            raise httpx2.DecodingError(f"upstream body larger than {limit} bytes")
        parts.append(part)
    return b"".join(parts)


#: How long, and how much, a finished stream's tail is read to keep its connection.
DRAIN_TIMEOUT_S = 0.05
DRAIN_MAX_BYTES = 4096


class UpstreamStream:
    """The chunks of one streaming upstream response, parsed from SSE `data:` lines.

    Iterating yields chunk dicts and ends at `data: [DONE]` (`done` is then True); an end
    without it leaves `done` False, for the gateway to treat as a failed delivery."""

    def __init__(self, response: httpx2.Response, deadline: float) -> None:
        self._response = response
        self._lines = response.aiter_lines()
        self._deadline = deadline
        self._first: dict[str, Any] | None = None
        self.done = False
        self.ended = False

    async def prime(self) -> None:
        self._first = await self._next_event()

    async def _next_event(self) -> dict[str, Any] | None:
        """The next data event, None at the end of the stream."""
        while True:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise StreamBroken("upstream_timeout", "the upstream call took too long")
            try:
                async with asyncio.timeout(remaining):
                    line = await anext(self._lines)
            except StopAsyncIteration:
                self.ended = True
                return None
            except TimeoutError:
                raise StreamBroken("upstream_timeout", "the upstream call took too long") from None
            except httpx2.TimeoutException:
                raise StreamBroken("upstream_timeout", "the upstream stream went idle") from None
            except httpx2.HTTPError as exc:
                raise StreamBroken(
                    "upstream_broken", f"the upstream stream broke: {exc!r}"
                ) from None
            if len(line) > MAX_UPSTREAM_BODY_BYTES:
                raise StreamBroken("upstream_bad_answer", "an upstream event was too large")
            if not line.startswith("data:"):
                continue  # blank separators, comments (`: ping`), `event:`/`id:` fields
            data = line[5:].strip()
            if data == "[DONE]":
                self.done = True
                self.ended = True
                return None
            try:
                event = json.loads(data)
            except ValueError:
                raise StreamBroken(
                    "upstream_bad_answer", "an upstream event was not JSON"
                ) from None
            if not isinstance(event, dict):
                raise StreamBroken("upstream_bad_answer", "an upstream event was not an object")
            if "error" in event:
                error = event["error"]
                message = error.get("message") if isinstance(error, dict) else error
                raise StreamBroken("upstream_error_event", str(message)[:2000])
            return event

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        while not self.ended:
            event = await self._next_event()
            if event is None:
                return
            yield event

    async def aclose(self) -> None:
        if self.done:
            # After `[DONE]` only the end of the body is left (the chunked terminator): read it,
            # briefly and boundedly, so the connection goes back to the pool. Closing a
            # response with unread bytes closes its connection, and every streamed call would
            # then pay a new TCP connection to the supplier.
            with contextlib.suppress(TimeoutError, httpx2.HTTPError, StopAsyncIteration):
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    drained = 0
                    async for line in self._lines:
                        drained += len(line)
                        if drained > DRAIN_MAX_BYTES:
                            break
        await self._response.aclose()

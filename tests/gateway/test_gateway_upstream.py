"""The upstream client over a mock transport: what it sends, how it parses SSE, and how it
classifies failures (retryable elsewhere or not); and over a real server, that it reuses its
connections."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from fake_upstream import FakeUpstream

from gridmarket.gateway.contract import SupplierEndpoint
from gridmarket.gateway.upstream import (
    StreamBroken,
    UpstreamClient,
    UpstreamError,
    UpstreamTimeouts,
)

ENDPOINT = SupplierEndpoint("s1", "text-prime", "http://up.test/v1/", "m-1", "sk-up")
BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "model": "text-prime"}


def client(
    handler: Callable[[httpx2.Request], httpx2.Response], **timeouts: float
) -> UpstreamClient:
    return UpstreamClient(UpstreamTimeouts(**timeouts), transport=httpx2.MockTransport(handler))


def sse(*events: Any, done: bool = True) -> bytes:
    text = ": ping\n\n" + "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    return (text + ("data: [DONE]\n\n" if done else "")).encode()


async def test_a_completion_is_sent_with_the_endpoint_model_and_key() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"choices": [{"message": {"content": "x"}}]})

    upstream = client(handler)
    answer = await upstream.complete(ENDPOINT, BODY)
    await upstream.aclose()
    assert answer["choices"][0]["message"]["content"] == "x"
    [request] = seen
    assert str(request.url) == "http://up.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-up"
    sent = json.loads(request.content)
    assert sent["model"] == "m-1" and sent["stream"] is False and "stream_options" not in sent


async def test_a_stream_asks_for_usage_and_parses_events_to_done() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        return httpx2.Response(
            200, content=sse({"choices": [{"delta": {"content": "a"}}]}, {"n": 2})
        )

    upstream = client(handler)
    stream = await upstream.open_stream(ENDPOINT, BODY)
    events = [event async for event in stream]
    await stream.aclose()
    await upstream.aclose()
    assert sent[0]["stream_options"] == {"include_usage": True}
    assert events == [{"choices": [{"delta": {"content": "a"}}]}, {"n": 2}]
    assert stream.done


async def test_a_stream_without_done_is_not_done() -> None:
    upstream = client(lambda r: httpx2.Response(200, content=sse({"a": 1}, done=False)))
    stream = await upstream.open_stream(ENDPOINT, BODY)
    assert [e async for e in stream] == [{"a": 1}]
    assert not stream.done


async def test_an_error_event_after_the_first_chunk_breaks_the_stream() -> None:
    body = sse({"a": 1}, {"error": {"message": "overloaded"}})
    upstream = client(lambda r: httpx2.Response(200, content=body))
    stream = await upstream.open_stream(ENDPOINT, BODY)
    with pytest.raises(StreamBroken, match="overloaded"):
        [e async for e in stream]


@pytest.mark.parametrize(
    ("status", "payload", "retryable", "code"),
    [
        (500, {"error": {"message": "boom"}}, True, "upstream_500"),
        (503, b"", True, "upstream_503"),
        (429, {"error": {"message": "slow down"}}, True, "upstream_429"),
        (401, {"error": {"message": "bad key"}}, True, "upstream_401"),
        (404, {"error": {"message": "no such model"}}, True, "upstream_404"),
        (
            400,
            {"error": {"message": "maximum context length is 8192", "code": None}},
            False,
            "context_length_exceeded",
        ),
        (400, {"error": {"message": "unsafe", "code": "content_filter"}}, False, "content_filter"),
        (422, {"error": "bad field"}, False, "upstream_422"),
    ],
)
async def test_failures_are_classified(
    status: int, payload: Any, retryable: bool, code: str
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if isinstance(payload, bytes):
            return httpx2.Response(status, content=payload)
        return httpx2.Response(status, json=payload)

    for streaming in (False, True):
        upstream = client(handler)
        with pytest.raises(UpstreamError) as raised:
            if streaming:
                await upstream.open_stream(ENDPOINT, BODY)
            else:
                await upstream.complete(ENDPOINT, BODY)
        assert (raised.value.retryable, raised.value.code) == (retryable, code)
        assert raised.value.status == status


async def test_unreachable_empty_and_garbled_upstreams_are_retryable() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    cases: list[tuple[Callable[[httpx2.Request], httpx2.Response], str]] = [
        (refuse, "upstream_unreachable"),
        (lambda r: httpx2.Response(200, content=b""), "upstream_empty"),
    ]
    for handler, code in cases:
        with pytest.raises(UpstreamError) as raised:
            await client(handler).open_stream(ENDPOINT, BODY)
        assert raised.value.retryable and raised.value.code == code
    with pytest.raises(UpstreamError) as garbled:
        await client(lambda r: httpx2.Response(200, content=b"<html>")).complete(ENDPOINT, BODY)
    assert garbled.value.retryable and garbled.value.code == "upstream_bad_answer"


async def test_a_slow_first_byte_times_out_and_may_go_elsewhere() -> None:
    from support.fake_upstream import FakeUpstream

    with FakeUpstream("slowpoke") as slow:
        endpoint = SupplierEndpoint("s1", "text-prime", slow.base_url, "m")
        body = {"messages": [{"role": "user", "content": "x #mode:slow #slow:2"}]}
        upstream = UpstreamClient(UpstreamTimeouts(first_byte_s=0.3))
        for call in (upstream.complete, upstream.open_stream):
            with pytest.raises(UpstreamError) as raised:
                await call(endpoint, body)  # type: ignore[operator]
            assert raised.value.retryable and raised.value.code == "upstream_timeout"
        await upstream.aclose()


@pytest.mark.parametrize("shards", [1, 3])
async def test_finished_calls_leave_their_connection_to_the_next_call_on_their_pool(
    shards: int,
) -> None:
    """A stream read to `[DONE]` and closed gives its connection back to its pool, and calls
    take turns on the pools: twelve calls in a row, streamed and not, reach the supplier over
    one TCP connection per pool, each used as often as the others."""
    with FakeUpstream("reuse") as upstream:
        endpoint = SupplierEndpoint("s", "text-prime", upstream.base_url, "fake")
        client = UpstreamClient(shards=shards)
        body = {"messages": [{"role": "user", "content": "hello there"}], "stream": True}
        try:
            for _ in range(6):
                stream = await client.open_stream(endpoint, body)
                chunks = [chunk async for chunk in stream]
                assert chunks and stream.done
                await stream.aclose()
                answer = await client.complete(endpoint, {**body, "stream": False})
                assert answer["choices"]
        finally:
            await client.aclose()
    assert len(upstream.peers) == 12
    uses = Counter(upstream.peers)
    assert len(uses) == shards and set(uses.values()) == {12 // shards}, upstream.peers

"""The Anthropic surface over real HTTP, driven by the official `anthropic` SDK.

A uvicorn server (in a thread) serves the app with the surface's router and a deterministic
fake `ChatGateway` (tests/support/fake_chat_gateway.py). Every response body and every stream
event the SDK receives is recorded on the wire and validated against Anthropic's official
OpenAPI document (tests/support/vendor_specs.py) when each test ends.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
import uvicorn
from fake_chat_gateway import FakeChatGateway
from vendor_specs import (
    validate_anthropic,
    validate_anthropic_error,
    validate_anthropic_stream_event,
)

from gridmarket.api import anthropic_messages
from gridmarket.api.app import create_app
from gridmarket.gateway.contract import Caller, GatewayError
from gridmarket.settings import Settings

ALICE_KEY = "gm-consumption-alice"
BOB_KEY = "gm-consumption-bob"
ALICE = Caller("acct-alice", "key-alice")
BOB = Caller("acct-bob", "key-bob", spend_cap_tokens=1000)
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
}


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) == {"event", "data"}, block  # no `id:`, nothing else
        events.append((fields["event"], json.loads(fields["data"])))
    return events


class Exchange:
    def __init__(self, request: httpx2.Request, response: httpx2.Response) -> None:
        self.path = request.url.path
        self.status = response.status_code
        self.headers = response.headers
        self.body = bytearray()

    def validate(self) -> None:
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            events = parse_sse(bytes(self.body))
            assert events, "an empty stream"
            for name, data in events:
                assert name == data["type"], (name, data)
                validate_anthropic_stream_event(data)
            return
        body = json.loads(self.body)
        if self.status != 200:
            validate_anthropic_error(body)
            assert body["request_id"] == self.headers["request-id"]
        elif self.path.endswith("/count_tokens"):
            validate_anthropic("CountMessageTokensResponse", body)
        else:
            validate_anthropic("Message", body)


class RecordingTransport(httpx2.HTTPTransport):
    """Tees every response body the SDK reads into an `Exchange`."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[Exchange] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        exchange = Exchange(request, response)
        self.exchanges.append(exchange)
        inner = response.stream

        class Tee(httpx2.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for part in inner:  # type: ignore[union-attr]
                    exchange.body.extend(part)
                    yield part

            def close(self) -> None:
                inner.close()  # type: ignore[union-attr]

        response.stream = Tee()
        return response


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def gateway() -> FakeChatGateway:
    return FakeChatGateway({ALICE_KEY: ALICE, BOB_KEY: BOB})


@pytest.fixture(scope="module")
def base_url(gateway: FakeChatGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings.resolve(data_dir=tmp_path_factory.mktemp("anthropic"), environ={})
    app = create_app(settings)
    app.include_router(anthropic_messages.router)
    app.state.gateway = gateway
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def wire() -> Iterator[RecordingTransport]:
    transport = RecordingTransport()
    yield transport
    assert transport.exchanges, "the test sent nothing"
    for exchange in transport.exchanges:
        exchange.validate()


def sdk(
    base_url: str, wire: RecordingTransport, key: str = ALICE_KEY, retries: int = 0
) -> anthropic.Anthropic:
    client = httpx2.Client(transport=wire, timeout=10)
    return anthropic.Anthropic(
        base_url=base_url, api_key=key, max_retries=retries, http_client=client
    )


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_a_message_round_trips(
    base_url: str, wire: RecordingTransport, gateway: FakeChatGateway
) -> None:
    client = sdk(base_url, wire)
    raw = client.messages.with_raw_response.create(
        model="TEXT-LOCAL",
        max_tokens=100,
        system="be brief",
        messages=ask("hello there"),
        metadata={"user_id": "user-42"},
        extra_body={"temperature": 0.5, "top_k": 5},  # deprecated: this SDK has no argument
    )
    message = raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_")
    assert message.model == "text-local"  # the instrument, in its own case
    assert message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "echo: hello there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    kind, caller, request = gateway.calls[-1]
    assert (kind, caller) == ("chat", ALICE)
    assert request["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    assert request["user"] == "user-42"
    assert request["temperature"] == 0.5
    assert "top_k" not in request
    assert request["max_tokens"] == 100
    # usage is the supplier's: 3 + 2 words of prompt, 1 for the system message... computed by
    # the fake from the request it received, and passed through unchanged.
    assert message.usage.input_tokens == (3 + 2) + (3 + 2)
    assert message.usage.output_tokens == 3


def test_bearer_auth_is_accepted_and_anthropic_headers_too(
    base_url: str, wire: RecordingTransport, gateway: FakeChatGateway
) -> None:
    client = anthropic.Anthropic(
        base_url=base_url,
        auth_token=BOB_KEY,
        max_retries=0,
        http_client=httpx2.Client(transport=wire),
        default_headers={"anthropic-beta": "tools-2024-04-04", "anthropic-version": "2023-06-01"},
    )
    message = client.messages.create(model="text-local", max_tokens=10, messages=ask("hi"))
    assert message.content[0].text == "echo: hi"  # type: ignore[union-attr]
    assert gateway.calls[-1][1] == BOB


def test_stop_sequences_and_max_tokens(base_url: str, wire: RecordingTransport) -> None:
    client = sdk(base_url, wire)
    stopped = client.messages.create(
        model="text-local",
        max_tokens=50,
        messages=ask("one two STOP three"),
        stop_sequences=["STOP"],
    )
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "STOP"
    assert stopped.content[0].text == "echo: one two "  # type: ignore[union-attr]
    cut = client.messages.create(model="text-local", max_tokens=2, messages=ask("a b c d"))
    assert cut.stop_reason == "max_tokens"
    assert cut.content[0].text == "echo: a"  # type: ignore[union-attr]


def test_tools_and_tool_results_round_trip(
    base_url: str, wire: RecordingTransport, gateway: FakeChatGateway
) -> None:
    client = sdk(base_url, wire)
    first = client.messages.create(
        model="text-local",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=ask("weather in Paris?"),
    )
    assert first.stop_reason == "tool_use"
    (tool_use,) = first.content
    assert tool_use.type == "tool_use"
    assert tool_use.name == "get_weather"
    assert tool_use.input == {"query": "weather in Paris?"}
    sent = gateway.calls[-1][2]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    second = client.messages.create(
        model="text-local",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            *ask("weather in Paris?"),
            {"role": "assistant", "content": [tool_use.model_dump(exclude={"caller"})]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny, 21C"}
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "tool said: sunny, 21C"  # type: ignore[union-attr]
    messages = gateway.calls[-1][2]["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": tool_use.id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"query": "weather in Paris?"}'},
            }
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": tool_use.id, "content": "sunny, 21C"}


def test_a_stream_follows_anthropics_event_sequence(
    base_url: str, wire: RecordingTransport, gateway: FakeChatGateway
) -> None:
    client = sdk(base_url, wire)
    calls_before = len(gateway.calls)
    with client.messages.stream(
        model="text-local", max_tokens=100, messages=ask("stream this please")
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    # message_start's input_tokens come from the gateway's own count: no second count call.
    assert [kind for kind, _, _ in gateway.calls[calls_before:]] == ["chat_stream"]
    assert "".join(texts) == "echo: stream this please"
    assert final.stop_reason == "end_turn"
    assert final.model == "text-local"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens == 3 + 3
    assert gateway.calls[-1][2]["stream_options"] == {"include_usage": True}
    names = [name for name, _ in parse_sse(bytes(wire.exchanges[-1].body))]
    assert names[:2] == ["message_start", "ping"]
    assert names[2] == "content_block_start"
    assert names[-4:] == [
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert wire.exchanges[-1].headers["request-id"].startswith("req_")


def test_a_streamed_tool_call_arrives_as_input_json_deltas(
    base_url: str, wire: RecordingTransport
) -> None:
    client = sdk(base_url, wire)
    with client.messages.stream(
        model="text-local",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=ask("weather in Oslo?"),
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    (block,) = final.content
    assert block.type == "tool_use"
    assert block.input == {"query": "weather in Oslo?"}
    events = parse_sse(bytes(wire.exchanges[-1].body))
    deltas = [d["delta"] for name, d in events if name == "content_block_delta"]
    assert [d["type"] for d in deltas] == ["input_json_delta", "input_json_delta"]
    assert json.loads("".join(d["partial_json"] for d in deltas)) == {"query": "weather in Oslo?"}


def test_a_stream_broken_after_its_first_byte_ends_with_an_error_event(
    base_url: str, wire: RecordingTransport
) -> None:
    client = sdk(base_url, wire)
    with (
        pytest.raises(anthropic.APIStatusError, match="the supplier went away"),
        client.messages.stream(model="interrupt", max_tokens=100, messages=ask("a b c")) as stream,
    ):
        list(stream.text_stream)
    events = parse_sse(bytes(wire.exchanges[-1].body))
    assert wire.exchanges[-1].status == 200
    assert events[0][0] == "message_start"
    assert events[-1] == (
        "error",
        {
            "type": "error",
            "error": {"type": "api_error", "message": "the supplier went away"},
            "request_id": wire.exchanges[-1].headers["request-id"],
        },
    )
    assert "message_stop" not in [name for name, _ in events]


def test_a_stream_without_a_finish_reason_is_a_failure_not_a_clean_end(
    base_url: str, wire: RecordingTransport
) -> None:
    client = sdk(base_url, wire)
    with (
        pytest.raises(anthropic.APIStatusError, match="without a finish reason"),
        client.messages.stream(model="no-finish", max_tokens=100, messages=ask("x")) as stream,
    ):
        list(stream.text_stream)
    names = [name for name, _ in parse_sse(bytes(wire.exchanges[-1].body))]
    assert names[-1] == "error"
    assert "message_stop" not in names


def test_a_silent_stream_gets_pings(
    base_url: str,
    wire: RecordingTransport,
    gateway: FakeChatGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(anthropic_messages, "PING_INTERVAL_S", 0.05)
    gateway.slow_delay_s = 0.2
    try:
        with sdk(base_url, wire).messages.stream(
            model="slow", max_tokens=10, messages=ask("x y")
        ) as stream:
            assert stream.get_final_text() == "echo: x y"
    finally:
        gateway.slow_delay_s = 0.0
    names = [name for name, _ in parse_sse(bytes(wire.exchanges[-1].body))]
    assert names.count("ping") >= 3


def test_a_client_leaving_mid_stream_closes_the_gateways_stream(
    base_url: str, gateway: FakeChatGateway
) -> None:
    gateway.slow_delay_s = 0.2
    closed_before = gateway.streams_closed
    completed_before = gateway.streams_completed
    body = {"model": "slow", "max_tokens": 10, "stream": True, "messages": ask("a b c d e f")}
    try:
        with (
            httpx.Client(base_url=base_url, timeout=10) as client,
            client.stream("POST", "/v1/messages", json=body, headers={"x-api-key": ALICE_KEY}) as r,
        ):
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("event: content_block_delta"):
                    break
        deadline = time.monotonic() + 5
        while gateway.streams_closed == closed_before:
            assert time.monotonic() < deadline, "the gateway's stream was never closed"
            time.sleep(0.02)
    finally:
        gateway.slow_delay_s = 0.0
    assert gateway.streams_completed == completed_before


def test_count_tokens(base_url: str, wire: RecordingTransport, gateway: FakeChatGateway) -> None:
    client = sdk(base_url, wire)
    counted = client.messages.count_tokens(
        model="text-local", system="be brief", messages=ask("count these four words")
    )
    assert counted.input_tokens == (3 + 2) + (3 + 4)
    assert gateway.calls[-1][0] == "count"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-instrument", messages=ask("x"))
    with pytest.raises(anthropic.AuthenticationError):
        sdk(base_url, wire, key="wrong").messages.count_tokens(
            model="text-local", messages=ask("x")
        )


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("invalid_request", "invalid_request_error"),
        ("payment_required", "billing_error"),
        ("permission", "permission_error"),
        ("not_found", "not_found_error"),
        ("unprocessable", "invalid_request_error"),
        ("rate_limit", "rate_limit_error"),
        ("internal", "api_error"),
        ("upstream", "api_error"),
        ("overloaded", "overloaded_error"),
        ("timeout", "timeout_error"),
    ],
)
def test_every_gateway_error_in_anthropics_shape(
    base_url: str, wire: RecordingTransport, kind: str, error_type: str, stream: bool
) -> None:
    status = GatewayError.STATUS[kind]
    client = sdk(base_url, wire)
    with pytest.raises(anthropic.APIStatusError) as caught:
        if stream:
            with client.messages.stream(
                model=f"error-{kind}", max_tokens=5, messages=ask("x")
            ) as s:
                list(s.text_stream)
        else:
            client.messages.create(model=f"error-{kind}", max_tokens=5, messages=ask("x"))
    error = caught.value
    assert error.status_code == status
    assert error.body == {
        "type": "error",
        "error": {"type": error_type, "message": f"fake {kind} failure"},
        "request_id": error.response.headers["request-id"],
    }
    retryable = status in (429,) or status >= 500
    assert error.response.headers["x-should-retry"] == ("true" if retryable else "false")
    if status in (429, 503):
        assert error.response.headers["retry-after"] == "2"


def test_authentication_errors(base_url: str, wire: RecordingTransport) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk(base_url, wire, key="not-a-key").messages.create(
            model="text-local", max_tokens=5, messages=ask("x")
        )
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    response = httpx.post(
        f"{base_url}/v1/messages", json={"model": "text-local", "max_tokens": 1, "messages": []}
    )
    assert response.status_code == 401
    assert response.headers["x-should-retry"] == "false"
    validate_anthropic_error(response.json())


def test_retryable_errors_are_retried_by_the_sdk_and_others_are_not(
    base_url: str, wire: RecordingTransport, gateway: FakeChatGateway
) -> None:
    before = len(gateway.calls)
    with pytest.raises(anthropic.BadRequestError):
        sdk(base_url, wire, retries=2).messages.create(
            model="error-invalid_request", max_tokens=5, messages=ask("x")
        )
    assert len(gateway.calls) == before + 1
    with pytest.raises(anthropic.InternalServerError):
        sdk(base_url, wire, retries=1).messages.create(
            model="error-upstream", max_tokens=5, messages=ask("x")
        )
    assert len(gateway.calls) == before + 3


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"model": "text-local", "messages": ask("x")}, "max_tokens"),
        ({"model": "text-local", "max_tokens": 0, "messages": ask("x")}, "max_tokens"),
        ({"model": "text-local", "max_tokens": True, "messages": ask("x")}, "max_tokens"),
        ({"model": "text-local", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": 7, "max_tokens": 5, "messages": ask("x")}, "model"),
        (
            {"model": "text-local", "max_tokens": 5, "messages": ask("x"), "temperature": 3},
            "temperature",
        ),
        (
            {"model": "text-local", "max_tokens": 5, "messages": ask("x"), "mcp_servers": []},
            "mcp_servers",
        ),
        (
            {
                "model": "text-local",
                "max_tokens": 5,
                "messages": [{"role": "system", "content": "x"}],
            },
            "messages.0.role",
        ),
        (
            {
                "model": "text-local",
                "max_tokens": 5,
                "messages": ask("x"),
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools.0",
        ),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    base_url: str, gateway: FakeChatGateway, body: Any, where: str
) -> None:
    before = len(gateway.calls)
    response = httpx.post(f"{base_url}/v1/messages", json=body, headers={"x-api-key": ALICE_KEY})
    assert response.status_code == 400, response.text
    payload = response.json()
    validate_anthropic_error(payload)
    assert payload["error"]["type"] == "invalid_request_error"
    assert where in payload["error"]["message"]
    assert len(gateway.calls) == before  # nothing reached the gateway


def test_a_body_that_is_not_json_is_400(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/v1/messages", content=b"{not json", headers={"x-api-key": ALICE_KEY}
    )
    assert response.status_code == 400
    validate_anthropic_error(response.json())


def test_without_a_gateway_the_surface_answers_503(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    app = create_app(Settings.resolve(data_dir=tmp_path, environ={}))
    app.include_router(anthropic_messages.router)
    with TestClient(app) as client:
        response = client.post("/v1/messages", json={}, headers={"x-api-key": ALICE_KEY})
    assert response.status_code == 503
    assert response.headers["x-should-retry"] == "true"
    validate_anthropic_error(response.json())

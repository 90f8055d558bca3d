"""Anthropic <-> OpenAI translation: requests, completions, streams and errors.

Every OpenAI fixture is first checked against OpenAI's official document, and every
translated object against Anthropic's (tests/support/vendor_specs.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from vendor_specs import (
    validate_anthropic,
    validate_anthropic_error,
    validate_anthropic_stream_event,
    validate_openai,
    validate_openai_chunk,
)

from gridmarket.gateway.anthropic_stream import StreamTranslator
from gridmarket.gateway.anthropic_translate import (
    ERROR_TYPES,
    TranslationError,
    UpstreamShapeError,
    chat_completion_to_message,
    error_body,
    error_type_for_status,
    messages_request_to_openai,
)

BASE: dict[str, Any] = {"model": "text-local", "max_tokens": 64}
PNG = "iVBORw0KGgo="


def translate(**fields: Any) -> dict[str, Any]:
    return messages_request_to_openai({**BASE, **fields})


def test_system_blocks_and_plain_text() -> None:
    request = translate(
        system=[{"type": "text", "text": "rule one"}, {"type": "text", "text": "rule two"}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {}}]}
        ],
    )
    assert request == {
        "model": "text-local",
        "max_tokens": 64,
        "messages": [
            {"role": "system", "content": "rule one\nrule two"},
            {"role": "user", "content": "hi"},
        ],
    }


def test_images_become_image_urls() -> None:
    request = translate(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/a.jpg"},
                    },
                ],
            }
        ]
    )
    assert request["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
            ],
        }
    ]


def test_tool_use_and_tool_results() -> None:
    request = translate(
        tools=[
            {
                "name": "search",
                "input_schema": {"type": "object"},
                "cache_control": {"type": "ephemeral"},
            }
        ],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[
            {"role": "user", "content": "find cats"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "searching"},
                    {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "cats"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "search", "input": {"q": "dogs"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3 cats"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "quota"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG,
                                },
                            },
                        ],
                    },
                    {"type": "text", "text": "and now?"},
                ],
            },
        ],
    )
    assert request["tools"] == [
        {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}
    ]
    assert request["tool_choice"] == "required"
    assert request["parallel_tool_calls"] is False
    assert request["messages"][1:] == [
        {
            "role": "assistant",
            "content": "searching",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"q": "cats"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"q": "dogs"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "3 cats"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: quota"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "text", "text": "and now?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "search"}, {"type": "function", "function": {"name": "search"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    tools = [{"name": "search", "input_schema": {"type": "object"}}]
    request = translate(
        tools=tools, tool_choice=choice, messages=[{"role": "user", "content": "x"}]
    )
    assert request["tool_choice"] == expected


def test_sampling_stops_user_stream_and_output_format() -> None:
    request = translate(
        messages=[{"role": "user", "content": "x"}],
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END", "###"],
        metadata={"user_id": "u-1"},
        stream=True,
        thinking={"type": "enabled", "budget_tokens": 1024},
        service_tier="auto",
        output_config={
            "effort": "low",
            "format": {"type": "json_schema", "schema": {"type": "object"}},
        },
    )
    assert request == {
        "model": "text-local",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END", "###"],
        "user": "u-1",
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": True},
        },
    }


def test_count_only_needs_no_max_tokens() -> None:
    request = messages_request_to_openai(
        {"model": "text-local", "messages": [{"role": "user", "content": "x"}]}, count_only=True
    )
    assert request == {"model": "text-local", "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 10**9}, "max_tokens"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages.0.content.0",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages.0.content.0.source.type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "text/html",
                                    "data": "x",
                                },
                            }
                        ],
                    }
                ]
            },
            "media_type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}],
                    }
                ]
            },
            "messages.0.content.0.input",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": ""}]}
                ]
            },
            "tool_use_id",
        ),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"tool_choice": {"type": "sometimes"}, "tools": []}, "tool_choice.type"),
        ({"stop_sequences": ["ok", 3]}, "stop_sequences"),
        ({"top_p": -0.1}, "top_p"),
        ({"stream": "yes"}, "stream"),
        ({"thinking": {"type": "maybe"}}, "thinking"),
        ({"inference_geo": "eu"}, "inference_geo"),
        ({"output_config": {"format": {"type": "regex"}}}, "output_config.format"),
        ({"metadata": {"user_id": 5}}, "user_id"),
    ],
)
def test_bad_requests_name_the_field(fields: dict[str, Any], param: str) -> None:
    body = {**BASE, "messages": [{"role": "user", "content": "x"}], **fields}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(TranslationError) as caught:
        messages_request_to_openai(body)
    assert param in caught.value.message


def test_null_only_fields_pass_when_null() -> None:
    request = translate(
        messages=[{"role": "user", "content": "x"}], inference_geo=None, container=None
    )
    assert "inference_geo" not in request and "container" not in request


# --- completions -------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str | None, **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "text-local",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish, "logprobs": None, **choice}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def assistant(
    content: str | None, tool_calls: list[dict[str, Any]] | None = None, refusal: str | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return message


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


OPENAI_FIXTURES = [
    pytest.param(
        completion(assistant("Hello!"), "stop"),
        [],
        "end_turn",
        None,
        [{"type": "text", "text": "Hello!"}],
        id="text",
    ),
    pytest.param(
        completion(assistant("Hel"), "length"),
        [],
        "max_tokens",
        None,
        [{"type": "text", "text": "Hel"}],
        id="length",
    ),
    pytest.param(
        completion(assistant("one two"), "stop", stop_reason="END"),
        ["END"],
        "stop_sequence",
        "END",
        [{"type": "text", "text": "one two"}],
        id="stop-sequence",
    ),
    pytest.param(
        completion(assistant("one two"), "stop", stop_reason=128009),
        ["END"],
        "end_turn",
        None,
        [{"type": "text", "text": "one two"}],
        id="stop-token-id",
    ),
    pytest.param(
        completion(
            assistant(None, [call("call_a", "f", '{"x": 1}'), call("call.b", "g", "")]),
            "tool_calls",
        ),
        [],
        "tool_use",
        None,
        [
            {"type": "tool_use", "id": "call_a", "name": "f", "input": {"x": 1}},
            {"type": "tool_use", "id": "call_b", "name": "g", "input": {}},
        ],
        id="tool-calls",
    ),
    pytest.param(
        completion(assistant("let me", [call("c1", "f", "not json")]), "stop"),
        [],
        "tool_use",
        None,
        [
            {"type": "text", "text": "let me"},
            {"type": "tool_use", "id": "c1", "name": "f", "input": {"_raw_arguments": "not json"}},
        ],
        id="tool-call-bad-json-finish-stop",
    ),
    pytest.param(
        completion(assistant(None, refusal="I can't"), "stop"),
        [],
        "refusal",
        None,
        [{"type": "text", "text": "I can't"}],
        id="refusal",
    ),
    pytest.param(
        completion(assistant(""), "content_filter"), [], "refusal", None, [], id="content-filter"
    ),
]


@pytest.mark.parametrize(("fixture", "stops", "reason", "sequence", "blocks"), OPENAI_FIXTURES)
def test_openai_completions_become_valid_anthropic_messages(
    fixture: dict[str, Any],
    stops: list[str],
    reason: str,
    sequence: str | None,
    blocks: list[dict[str, Any]],
) -> None:
    choice = {k: v for k, v in fixture["choices"][0].items() if k != "stop_reason"}
    validate_openai("CreateChatCompletionResponse", {**fixture, "choices": [choice]})
    message = chat_completion_to_message(
        fixture, message_id="msg_1", model="text-local", stops=stops
    )
    validate_anthropic("Message", message)
    assert message["stop_reason"] == reason
    assert message["stop_sequence"] == sequence
    assert [
        {k: v for k, v in b.items() if k not in ("citations", "caller")} for b in message["content"]
    ] == blocks
    assert (message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (11, 7)
    assert (message["id"], message["model"]) == ("msg_1", "text-local")


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {},
        {"choices": []},
        {"choices": [{"message": None}]},
        {"choices": [{"message": {"tool_calls": [{"function": {}}]}}]},
    ],
)
def test_unreadable_completions_are_upstream_errors(bad: Any) -> None:
    with pytest.raises(UpstreamShapeError):
        chat_completion_to_message(bad, message_id="msg_1", model="m", stops=[])


# --- streams -----------------------------------------------------------------------------


def chunk(
    delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "text-local",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if usage is not None:
        out["choices"] = []
        out["usage"] = usage
    return out


def run(
    chunks: list[dict[str, Any]], stops: list[str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    for c in chunks:
        validate_openai_chunk(c)
    translator = StreamTranslator(
        message_id="msg_s", model="text-local", input_tokens=9, stops=stops or []
    )
    events = translator.start()
    for c in chunks:
        events += translator.feed(c)
    events += translator.finish()
    for name, data in events:
        assert name == data["type"]
        validate_anthropic_stream_event(data)
    return events


def tool_delta(
    index: int, *, call_id: str | None = None, name: str | None = None, args: str | None = None
) -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "function": {}}
    if call_id:
        fragment["id"] = call_id
        fragment["type"] = "function"
    if name:
        fragment["function"]["name"] = name
    if args is not None:
        fragment["function"]["arguments"] = args
    return {"tool_calls": [fragment]}


USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


def test_a_text_stream() -> None:
    events = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            chunk({}, usage=USAGE),
        ]
    )
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0][1]["message"]["usage"]["input_tokens"] == 9
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == "Hello"
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert (delta["usage"]["input_tokens"], delta["usage"]["output_tokens"]) == (12, 5)


def test_text_then_two_tool_calls_stream_as_three_blocks() -> None:
    events = run(
        [
            chunk({"role": "assistant", "content": "Let me check."}),
            chunk(tool_delta(0, call_id="call_1", name="f", args="")),
            chunk(tool_delta(0, args='{"a":')),
            chunk(tool_delta(0, args=" 1}")),
            chunk(tool_delta(1, call_id="call_2", name="g", args='{"b": 2}')),
            chunk({}, "tool_calls"),
        ]
    )
    starts = [d for n, d in events if n == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [
        (0, "text"),
        (1, "tool_use"),
        (2, "tool_use"),
    ]
    assert [s["content_block"].get("id") for s in starts] == [None, "call_1", "call_2"]
    json_by_index: dict[int, str] = {}
    for n, d in events:
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta":
            json_by_index[d["index"]] = (
                json_by_index.get(d["index"], "") + d["delta"]["partial_json"]
            )
    assert {i: json.loads(s) for i, s in json_by_index.items()} == {1: {"a": 1}, 2: {"b": 2}}
    assert [d["index"] for n, d in events if n == "content_block_stop"] == [0, 1, 2]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_tool_name_arriving_late_is_waited_for() -> None:
    events = run(
        [
            chunk(tool_delta(0, call_id="call_1", args='{"a"')),
            chunk(tool_delta(0, name="f", args=": 1}")),
            chunk({}, "stop"),
        ]
    )
    start = next(d for n, d in events if n == "content_block_start")
    assert start["content_block"]["name"] == "f"
    assert (
        "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta")
        == '{"a": 1}'
    )
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_stop_sequence_in_a_stream() -> None:
    stop = chunk({}, "stop")
    translator = StreamTranslator(message_id="m", model="text-local", input_tokens=1, stops=["END"])
    translator.feed(chunk({"content": "x"}))
    stop["choices"][0]["stop_reason"] = "END"
    translator.feed(stop)
    delta = translator.finish()[-2][1]["delta"]
    assert (delta["stop_reason"], delta["stop_sequence"]) == ("stop_sequence", "END")


def test_an_interleaved_tool_call_cannot_be_translated() -> None:
    translator = StreamTranslator(message_id="m", model="text-local", input_tokens=1, stops=[])
    translator.feed(chunk(tool_delta(0, call_id="a", name="f", args="{")))
    translator.feed(chunk(tool_delta(1, call_id="b", name="g", args="{")))
    with pytest.raises(UpstreamShapeError, match="resumed"):
        translator.feed(chunk(tool_delta(0, args="}")))


def test_a_stream_without_a_finish_reason_does_not_end_cleanly() -> None:
    translator = StreamTranslator(message_id="m", model="text-local", input_tokens=1, stops=[])
    translator.feed(chunk({"content": "x"}))
    with pytest.raises(UpstreamShapeError, match="finish reason"):
        translator.finish()


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [*ERROR_TYPES, 408, 418, 501])
def test_error_bodies_are_anthropics(status: int) -> None:
    body = error_body(status, "nope", "req_1")
    validate_anthropic_error(body)
    assert body["error"]["type"] == error_type_for_status(status)


def test_error_types_by_status() -> None:
    assert {
        s: error_type_for_status(s)
        for s in (400, 401, 402, 403, 404, 413, 429, 500, 503, 529, 418, 599)
    } == {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        503: "overloaded_error",
        529: "overloaded_error",
        418: "invalid_request_error",
        599: "api_error",
    }

"""The vendor-spec validators accept known-good objects and reject broken ones, naming where."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from vendor_specs import (
    SpecViolation,
    normalise,
    validate_anthropic,
    validate_anthropic_error,
    validate_anthropic_stream_event,
    validate_openai,
    validate_openai_chunk,
    validate_openai_error,
)

ANTHROPIC_USAGE: dict[str, Any] = {
    "input_tokens": 12,
    "output_tokens": 3,
    "cache_creation": None,
    "cache_creation_input_tokens": None,
    "cache_read_input_tokens": None,
    "inference_geo": None,
    "output_tokens_details": None,
    "server_tool_use": None,
    "service_tier": None,
}

MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "content": [
        {"type": "text", "text": "Hello", "citations": None},
        {
            "type": "tool_use",
            "id": "toolu_01",
            "name": "get_weather",
            "input": {"city": "Paris"},
            "caller": {"type": "direct"},
        },
    ],
    "model": "text-local",
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "stop_details": None,
    "container": None,
    "usage": ANTHROPIC_USAGE,
}

CHAT_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "text-local",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "Hi", "refusal": None},
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}

CHUNK: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "text-local",
    "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None, "logprobs": None}],
    "usage": None,
}


def broken(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def test_openai_completion_good_and_broken() -> None:
    validate_openai("CreateChatCompletionResponse", CHAT_COMPLETION)
    bad = broken(CHAT_COMPLETION, ("choices", 0, "finish_reason"), "done")
    with pytest.raises(SpecViolation, match=r"\$\.choices\[0\]\.finish_reason"):
        validate_openai("CreateChatCompletionResponse", bad)
    with pytest.raises(SpecViolation, match="'object' is a required property"):
        validate_openai(
            "CreateChatCompletionResponse",
            {k: v for k, v in CHAT_COMPLETION.items() if k != "object"},
        )


def test_openai_chunk_good_and_broken() -> None:
    validate_openai_chunk(CHUNK)
    # `usage` is `nullable: true` beside a $ref in the document: both null and a usage pass.
    validate_openai_chunk(
        broken(CHUNK, ("usage",), {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    )
    with pytest.raises(SpecViolation, match=r"\$\.usage"):
        validate_openai_chunk(broken(CHUNK, ("usage",), {"prompt_tokens": "1"}))
    with pytest.raises(SpecViolation, match=r"chat\.completion\.chunk"):
        validate_openai_chunk(broken(CHUNK, ("object",), "chat.completion"))


def test_openai_error_good_and_broken() -> None:
    validate_openai_error(
        {"error": {"message": "no", "type": "invalid_request_error", "param": None, "code": None}}
    )
    with pytest.raises(SpecViolation, match="'param' is a required property"):
        validate_openai_error({"error": {"message": "no", "type": "x", "code": None}})


def test_anthropic_message_good_and_broken() -> None:
    validate_anthropic("Message", MESSAGE)
    with pytest.raises(SpecViolation, match=r"\$\.content\[1\]\.input"):
        validate_anthropic("Message", broken(MESSAGE, ("content", 1, "input"), '{"city": "Paris"}'))
    with pytest.raises(SpecViolation, match=r"\$\.stop_reason"):
        validate_anthropic("Message", broken(MESSAGE, ("stop_reason",), "stop"))
    with pytest.raises(SpecViolation, match="'service_tier' is a required property"):
        usage = {k: v for k, v in ANTHROPIC_USAGE.items() if k != "service_tier"}
        validate_anthropic("Message", broken(MESSAGE, ("usage",), usage))


def test_anthropic_count_tokens() -> None:
    validate_anthropic("CountMessageTokensResponse", {"input_tokens": 7})
    with pytest.raises(SpecViolation):
        validate_anthropic("CountMessageTokensResponse", {"tokens": 7})


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": "", "citations": None},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a'},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "stop_details": None,
                "container": None,
            },
            "usage": {
                "output_tokens": 3,
                "input_tokens": 12,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": None,
                "output_tokens_details": None,
                "server_tool_use": None,
            },
        },
        {"type": "message_stop"},
        {"type": "ping"},
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "busy"},
            "request_id": "req_1",
        },
    ],
)
def test_anthropic_stream_events_good(event: dict[str, Any]) -> None:
    validate_anthropic_stream_event(event)


@pytest.mark.parametrize(
    ("event", "where"),
    [
        (
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}},
            r"\$\.delta",
        ),
        ({"type": "content_block_stop"}, "'index' is a required property"),
        (
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 1},
            },
            "required",
        ),
        ({"type": "ping", "extra": 1}, "extra"),
        ({"type": "message_end"}, "message_end"),
    ],
)
def test_anthropic_stream_events_broken(event: dict[str, Any], where: str) -> None:
    with pytest.raises(SpecViolation, match=where):
        validate_anthropic_stream_event(event)


@pytest.mark.parametrize(
    "error_type",
    [
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
        "timeout_error",
    ],
)
def test_anthropic_error_types(error_type: str) -> None:
    validate_anthropic_error(
        {"type": "error", "error": {"type": error_type, "message": "m"}, "request_id": None}
    )


def test_anthropic_error_broken() -> None:
    with pytest.raises(SpecViolation):
        validate_anthropic_error(
            {"type": "error", "error": {"type": "teapot_error", "message": "m"}, "request_id": None}
        )
    with pytest.raises(SpecViolation, match="'request_id' is a required property"):
        validate_anthropic_error({"type": "error", "error": {"type": "api_error", "message": "m"}})
    with pytest.raises(SpecViolation):
        validate_anthropic_error(
            {"error": {"type": "api_error", "message": "m"}, "request_id": None}
        )


def test_unknown_component_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="NoSuchThing"):
        validate_anthropic("NoSuchThing", {})


def test_normalise_nullable_and_openapi30_habits() -> None:
    assert normalise({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert normalise({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    assert normalise({"$ref": "#/x", "nullable": True}) == {
        "anyOf": [{"$ref": "#/x"}, {"type": "null"}]
    }
    assert normalise({"type": "number", "minimum": 0, "exclusiveMinimum": True}) == {
        "type": "number",
        "exclusiveMinimum": 0,
    }
    assert normalise({"type": "number", "maximum": 1, "exclusiveMaximum": False}) == {
        "type": "number",
        "maximum": 1,
    }
    schema = {
        "type": "object",
        "x-stainless-const": True,
        "discriminator": {"propertyName": "type"},
        "properties": {"x-field": {"type": "integer", "x-note": 1}},
    }
    assert normalise(schema) == {"type": "object", "properties": {"x-field": {"type": "integer"}}}

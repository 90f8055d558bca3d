"""Request validation: every field passed, dropped or refused, with the right status."""

from __future__ import annotations

from typing import Any

import pytest

from gridmarket.gateway.contract import GatewayError
from gridmarket.gateway.request import validate

MESSAGES = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "text-prime", "messages": MESSAGES, **fields}


def refused(fields: dict[str, Any]) -> GatewayError:
    with pytest.raises(GatewayError) as raised:
        validate(body(**fields), max_output_tokens=1000)
    return raised.value


def test_a_full_request_passes_through_without_the_dropped_fields() -> None:
    fields: dict[str, Any] = {
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [TOOL],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
        "stop": ["a", "b"],
        "max_tokens": 10,
        "max_completion_tokens": 20,
        "n": 2,
        "temperature": 0.5,
        "top_p": 1,
        "seed": 7,
        "presence_penalty": -1.5,
        "frequency_penalty": 2,
        "logit_bias": {"50256": -100},
        "logprobs": True,
        "top_logprobs": 3,
        "user": "u1",
        "reasoning_effort": "low",
    }
    dropped = {
        "metadata": {"k": "v"},
        "store": False,
        "service_tier": "auto",
        "prompt_cache_key": "c",
        "safety_identifier": "s",
        "route": "fallback",
        "provider": {"allow_fallbacks": True},
        "modalities": ["text"],
    }
    sent = validate(body(**fields, **dropped), max_output_tokens=1000)
    assert sent == {"messages": MESSAGES, **fields}


@pytest.mark.parametrize(
    ("fields", "status", "param"),
    [
        ({"messages": None}, 400, "messages"),
        ({"messages": []}, 400, "messages"),
        ({"messages": "hi"}, 400, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, 400, "messages[0].content"),
        ({"messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": [{"text": 1}]}]}, 400, "messages[0].content"),
        ({"stream": "yes"}, 400, "stream"),
        ({"stream_options": {"include_usage": True}}, 400, "stream_options"),
        ({"temperature": 2.5}, 422, "temperature"),
        ({"temperature": True}, 400, "temperature"),
        ({"temperature": float("nan")}, 400, "temperature"),
        ({"top_p": 1.1}, 422, "top_p"),
        ({"n": 0}, 422, "n"),
        ({"n": 129}, 422, "n"),
        ({"max_tokens": 1001}, 422, "max_tokens"),
        ({"max_completion_tokens": 0}, 422, "max_completion_tokens"),
        ({"max_tokens": 1.5}, 400, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, 422, "stop"),
        ({"stop": 5}, 400, "stop"),
        ({"presence_penalty": -3}, 422, "presence_penalty"),
        ({"logit_bias": {"x": 1}}, 422, "logit_bias"),
        ({"top_logprobs": 3}, 422, "top_logprobs"),
        ({"top_logprobs": 21, "logprobs": True}, 422, "top_logprobs"),
        ({"tools": [{"type": "web"}]}, 422, "tools[0]"),
        ({"tools": "f"}, 400, "tools"),
        ({"tool_choice": "sometimes"}, 422, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "g"}}}, 422, "tool_choice"),
        ({"response_format": {"type": "xml"}}, 422, "response_format"),
        ({"store": True}, 422, "store"),
        ({"modalities": ["text", "audio"]}, 422, "modalities"),
        ({"audio": {"voice": "x"}}, 422, "audio"),
        ({"functions": []}, 422, "functions"),
        ({"metadata": {"k": 1}}, 400, "metadata"),
        ({"user": "u" * 600}, 422, "user"),
        ({"bogus": 1}, 400, "bogus"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(
    fields: dict[str, Any], status: int, param: str
) -> None:
    error = refused(fields)
    assert (error.status, error.param) == (status, param), error.message


def test_not_an_object_is_a_400() -> None:
    with pytest.raises(GatewayError) as raised:
        validate(["x"], max_output_tokens=10)
    assert raised.value.status == 400

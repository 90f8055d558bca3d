"""Validation of an OpenAI chat completion request, before anything is committed or routed.

`validate(body)` returns the body to send upstream (a new dict) or raises `GatewayError`:
400 `invalid_request_error` for a malformed body or a wrong type, 422 `unprocessable` for a
value out of range or a feature Gridmarket cannot honour. Every field OpenAI's Chat
Completions API accepts is listed here, with what happens to it:

passed through to the supplier (checked first):
    messages (required, 1..MAX_MESSAGES; roles system, developer, user, assistant, tool,
    function), stream (bool), stream_options ({include_usage, include_obfuscation}),
    tools (<= MAX_TOOLS function tools), tool_choice ("none"|"auto"|"required"|{function}),
    parallel_tool_calls (bool), response_format ({type: text|json_object|json_schema}),
    stop (string or <= 4 strings), max_tokens / max_completion_tokens (>= 1, <= the
    instrument's output floor), n (1..128), temperature (0..2), top_p (0..1), seed (int),
    presence_penalty / frequency_penalty (-2..2), logit_bias (<= 300 token ids -> -100..100),
    logprobs (bool), top_logprobs (0..20, needs logprobs), user (string), reasoning_effort,
    verbosity (strings)
accepted and not sent upstream (no meaning for a supplier):
    metadata (<= 16 string pairs), service_tier ("auto"/"default"), store (false only),
    prompt_cache_key, prompt_cache_retention, safety_identifier (strings),
    route ("fallback": Gridmarket always fails over), provider (an object)
refused with 422 (cannot be honoured): store=true, modalities other than ["text"], audio,
    prediction, web_search_options, functions / function_call (use tools / tool_choice)
refused with 400: any other field (`unrecognized_field`), as OpenAI does.

`model` is resolved by the gateway (an instrument id, any case) and not checked here.
"""

from __future__ import annotations

import math
from typing import Any

from gridmarket.gateway.contract import GatewayError

MAX_MESSAGES = 2_048
MAX_TOOLS = 128
MAX_STOP = 4
MAX_N = 128
MAX_LOGIT_BIAS = 300
MAX_METADATA = 16
MAX_STRING = 512
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PASSED = frozenset(
    {
        "messages",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "temperature",
        "top_p",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "reasoning_effort",
        "verbosity",
    }
)
_DROPPED = frozenset(
    {
        "model",
        "metadata",
        "service_tier",
        "store",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "route",
        "provider",
        "modalities",
    }
)
_UNSUPPORTED = frozenset(
    {"audio", "prediction", "web_search_options", "functions", "function_call"}
)


def bad(message: str, param: str | None, code: str = "invalid_type") -> GatewayError:
    return GatewayError("invalid_request", code, message, param=param)


def out_of_range(message: str, param: str | None, code: str = "invalid_value") -> GatewayError:
    return GatewayError("unprocessable", code, message, param=param)


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return (type(value) is int or type(value) is float) and math.isfinite(value)


def _optional_int(body: dict[str, Any], name: str, low: int, high: int) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_int(value):
        raise bad(f"{name} must be an integer", name)
    if not low <= value <= high:
        raise out_of_range(f"{name} must be between {low} and {high}", name)


def _optional_number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_number(value):
        raise bad(f"{name} must be a number", name)
    if not low <= value <= high:
        raise out_of_range(f"{name} must be between {low:g} and {high:g}", name)


def _optional_type(body: dict[str, Any], name: str, kind: type, label: str) -> None:
    value = body.get(name)
    if value is not None and type(value) is not kind:
        raise bad(f"{name} must be {label}", name)


def validate(body: Any, *, max_output_tokens: int) -> dict[str, Any]:
    """The upstream body for an OpenAI chat request (without `model`), or a `GatewayError`."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object", None)
    for name in body:
        if name in _UNSUPPORTED:
            hint = " (use tools / tool_choice)" if name.startswith("function") else ""
            raise out_of_range(f"{name} is not supported{hint}", name, "unsupported_parameter")
        if name not in _PASSED and name not in _DROPPED:
            shown = str(name)[:64]
            raise bad(f"unrecognized request argument: {shown}", shown, "unrecognized_field")
    _messages(body.get("messages"))
    _optional_type(body, "stream", bool, "a boolean")
    _stream_options(body)
    _tools(body)
    _optional_type(body, "parallel_tool_calls", bool, "a boolean")
    _response_format(body.get("response_format"))
    _stop(body.get("stop"))
    _optional_int(body, "max_tokens", 1, max_output_tokens)
    _optional_int(body, "max_completion_tokens", 1, max_output_tokens)
    _optional_int(body, "n", 1, MAX_N)
    _optional_number(body, "temperature", 0, 2)
    _optional_number(body, "top_p", 0, 1)
    _optional_int(body, "seed", -(2**63), 2**63 - 1)
    _optional_number(body, "presence_penalty", -2, 2)
    _optional_number(body, "frequency_penalty", -2, 2)
    _logit_bias(body.get("logit_bias"))
    _optional_type(body, "logprobs", bool, "a boolean")
    _optional_int(body, "top_logprobs", 0, 20)
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        raise out_of_range("top_logprobs needs logprobs: true", "top_logprobs")
    for name in ("user", "reasoning_effort", "verbosity", "prompt_cache_key", "safety_identifier"):
        _short_string(body, name)
    _dropped(body)
    return {name: value for name, value in body.items() if name in _PASSED and value is not None}


def _short_string(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, str):
        raise bad(f"{name} must be a string", name)
    if len(value) > MAX_STRING:
        raise out_of_range(f"{name} is longer than {MAX_STRING} characters", name)


def _dropped(body: dict[str, Any]) -> None:
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise bad("metadata must be an object of strings", "metadata")
        if len(metadata) > MAX_METADATA:
            raise out_of_range(f"metadata has more than {MAX_METADATA} pairs", "metadata")
    if body.get("store") not in (None, False):
        raise out_of_range("store: true is not supported (nothing is stored)", "store")
    if body.get("service_tier") not in (None, "auto", "default"):
        raise out_of_range("service_tier must be auto or default", "service_tier")
    if body.get("modalities") not in (None, ["text"]):
        raise out_of_range("only the text modality is supported", "modalities")
    if body.get("route") not in (None, "fallback"):
        raise out_of_range("route must be fallback", "route")
    if body.get("provider") is not None and not isinstance(body["provider"], dict):
        raise bad("provider must be an object", "provider")
    _optional_type(body, "prompt_cache_retention", str, "a string")


def _messages(messages: Any) -> None:
    if messages is None:
        raise bad("messages is required", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise bad("messages must be an array", "messages")
    if not messages:
        raise bad("messages must hold at least one message", "messages", "empty_array")
    if len(messages) > MAX_MESSAGES:
        raise out_of_range(f"at most {MAX_MESSAGES} messages", "messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad(f"{where} must be an object", where)
        role = message.get("role")
        if role not in _ROLES:
            raise bad(f"{where}.role must be one of {sorted(_ROLES)}", f"{where}.role")
        content = message.get("content")
        has_calls = role == "assistant" and bool(message.get("tool_calls"))
        if content is None and not has_calls:
            raise bad(f"{where}.content is required", f"{where}.content")
        if content is not None and not isinstance(content, str | list):
            raise bad(f"{where}.content must be a string or an array", f"{where}.content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise bad(f"{where}.content[{j}] must be a typed part", f"{where}.content")
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise bad(f"{where}.content[{j}].text must be a string", f"{where}.content")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise bad(f"{where}.tool_call_id is required", f"{where}.tool_call_id")
        calls = message.get("tool_calls")
        if calls is not None:
            _tool_calls(calls, where)


def _tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list):
        raise bad(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(function, dict)
            or not isinstance(call.get("id"), str)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            raise bad(
                f"{where}.tool_calls items need id, function.name and function.arguments",
                f"{where}.tool_calls",
            )


def _stream_options(body: dict[str, Any]) -> None:
    options = body.get("stream_options")
    if options is None:
        return
    if not isinstance(options, dict):
        raise bad("stream_options must be an object", "stream_options")
    if body.get("stream") is not True:
        raise bad("stream_options needs stream: true", "stream_options")
    for name, value in options.items():
        if name not in ("include_usage", "include_obfuscation"):
            raise bad(f"unknown stream_options field {str(name)[:64]}", "stream_options")
        if type(value) is not bool:
            raise bad(f"stream_options.{name} must be a boolean", "stream_options")


def _tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad("tools must be an array", "tools")
        if len(tools) > MAX_TOOLS:
            raise out_of_range(f"at most {MAX_TOOLS} tools", "tools")
        for i, tool in enumerate(tools):
            at = f"tools[{i}]"
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise out_of_range(f"{at} must be a function tool", at)
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise out_of_range(f"{at}.function.name is required", at)
            if not 0 < len(function["name"]) <= 64:
                raise out_of_range(f"{at}.function.name must be 1-64 characters", at)
            parameters = function.get("parameters")
            if parameters is not None and not isinstance(parameters, dict):
                raise out_of_range(f"{at}.function.parameters must be an object", at)
    choice = body.get("tool_choice")
    if choice is None or choice in ("none", "auto", "required"):
        return
    function = choice.get("function") if isinstance(choice, dict) else None
    if (
        not isinstance(choice, dict)
        or choice.get("type") != "function"
        or not isinstance(function, dict)
        or not isinstance(function.get("name"), str)
    ):
        raise out_of_range("tool_choice must be none, auto, required or a function", "tool_choice")
    if not any(
        isinstance(tool, dict) and tool.get("function", {}).get("name") == function["name"]
        for tool in tools or ()
    ):
        raise out_of_range("tool_choice names a function that is not in tools", "tool_choice")


def _response_format(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") not in (
        "text",
        "json_object",
        "json_schema",
    ):
        raise out_of_range(
            "response_format.type must be text, json_object or json_schema", "response_format"
        )
    if value["type"] == "json_schema":
        schema = value.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
            raise out_of_range("response_format.json_schema needs a name", "response_format")


def _stop(value: Any) -> None:
    if value is None or isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise bad("stop must be a string or an array of strings", "stop")
    if len(value) > MAX_STOP:
        raise out_of_range(f"stop holds at most {MAX_STOP} strings", "stop")


def _logit_bias(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise bad("logit_bias must be an object", "logit_bias")
    if len(value) > MAX_LOGIT_BIAS:
        raise out_of_range(f"logit_bias holds at most {MAX_LOGIT_BIAS} entries", "logit_bias")
    for token, bias in value.items():
        if not token.isdigit() or not _is_number(bias) or not -100 <= bias <= 100:
            raise out_of_range(
                "logit_bias maps token ids to numbers from -100 to 100", "logit_bias"
            )

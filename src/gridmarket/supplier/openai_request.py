"""OpenAI Chat Completions requests for the built-in model: checked, then turned into
llama.cpp's arguments.

`parse_request(body)` returns the arguments, or raises `BadRequest` (message, param, code) for
anything the model cannot honour: `n` other than 1, tools and tool choices (the model has no
tool calls), log-probabilities, unknown fields, wrong types or out-of-range values, content
other than text. Every list is bounded (messages, stop sequences).
"""

from __future__ import annotations

from typing import Any

CONTEXT_TOKENS = 8_192
DEFAULT_TEMPERATURE = 0.2  # what SmolLM2's authors recommend; OpenAI's 1.0 rambles at 135M
MAX_MESSAGES = 1_000
MAX_STOP_SEQUENCES = 4
ROLES = frozenset({"system", "developer", "user", "assistant"})
#: Fields accepted and honoured, or harmless to ignore (metadata, user, store).
KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "response_format",
        "user",
        "metadata",
        "store",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "parallel_tool_calls",
        "logprobs",
    }
)


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if type(value) not in (int, float) or not low <= value <= high:
        raise BadRequest(f"'{name}' must be a number from {low} to {high}", name)
    return float(value)


def _integer(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int or not low <= value <= high:
        raise BadRequest(f"'{name}' must be a whole number from {low} to {high}", name)
    return value


def _content(message: dict[str, Any], index: int) -> str:
    content = message.get("content")
    param = f"messages[{index}].content"
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise BadRequest("only text content parts are supported", param)
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequest("a text part needs a string 'text'", param)
            texts.append(text)
        return "".join(texts)
    raise BadRequest("'content' must be a string or a list of text parts", param)


def parse_request(body: Any) -> dict[str, Any]:
    """The llama.cpp arguments for an OpenAI chat request; `BadRequest` when it is not one."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        raise BadRequest(
            f"unsupported parameter: '{unknown[0]}'", unknown[0], "unsupported_parameter"
        )
    for name in ("tools", "functions"):
        if body.get(name):
            raise BadRequest(
                f"'{name}' are not supported: this model has no tool calls",
                name,
                "unsupported_parameter",
            )
    for name in ("tool_choice", "function_call"):
        if body.get(name) not in (None, "none"):
            raise BadRequest(
                f"'{name}' is not supported: this model has no tool calls",
                name,
                "unsupported_parameter",
            )
    if body.get("logprobs"):
        raise BadRequest("'logprobs' is not supported", "logprobs", "unsupported_parameter")
    n = body.get("n")
    if n is not None and (type(n) is not int or n != 1):
        raise BadRequest("only 'n' = 1 is supported: one generation at a time", "n")
    if "model" in body and not isinstance(body["model"], str):
        raise BadRequest("'model' must be a string", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not 0 < len(messages) <= MAX_MESSAGES:
        raise BadRequest(f"'messages' must be a list of 1 to {MAX_MESSAGES} messages", "messages")
    chat: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(
                "each message needs a 'role' of system, developer, user or assistant",
                f"messages[{index}].role",
            )
        role = "system" if message["role"] == "developer" else message["role"]
        chat.append({"role": role, "content": _content(message, index)})
    stream = body.get("stream", False)
    if type(stream) is not bool:
        raise BadRequest("'stream' must be a boolean", "stream")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict) or type(options.get("include_usage", False)) is not bool:
            raise BadRequest("'stream_options.include_usage' must be a boolean", "stream_options")
        include_usage = options.get("include_usage", False)
    max_tokens = _integer(body, "max_completion_tokens", 1, CONTEXT_TOKENS)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1, CONTEXT_TOKENS)
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list)
        or len(stop) > MAX_STOP_SEQUENCES
        or not all(isinstance(s, str) and s for s in stop)
    ):
        raise BadRequest(f"'stop' must be a string or up to {MAX_STOP_SEQUENCES} strings", "stop")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict)
        or response_format.get("type") not in ("text", "json_object")
    ):
        raise BadRequest("'response_format.type' must be text or json_object", "response_format")
    seed = _integer(body, "seed", -(2**63), 2**63 - 1)
    temperature = _number(body, "temperature", 0, 2)
    top_p = _number(body, "top_p", 0, 1)
    return {
        "messages": chat,
        "stream": stream,
        "include_usage": include_usage,
        "max_tokens": max_tokens,
        "temperature": DEFAULT_TEMPERATURE if temperature is None else temperature,
        "top_p": 1.0 if top_p is None else top_p,
        "stop": stop or [],
        # OpenAI takes any 64-bit seed; llama.cpp's sampler takes 32 bits.
        "seed": None if seed is None else seed % 2**32,
        "presence_penalty": _number(body, "presence_penalty", -2, 2) or 0.0,
        "frequency_penalty": _number(body, "frequency_penalty", -2, 2) or 0.0,
        "response_format": response_format
        if response_format and response_format["type"] == "json_object"
        else None,
    }

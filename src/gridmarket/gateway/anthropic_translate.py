"""Anthropic Messages <-> OpenAI Chat Completions, as pure functions (no I/O, clock or ids).

The gateway speaks OpenAI's protocol inside (`gateway.contract`); the Anthropic surface
(`api/anthropic_messages.py`) translates at its edge with these:

- `messages_request_to_openai(body)`: an Anthropic `POST /v1/messages` body -> an OpenAI chat
  request, or `TranslationError` (a 400 `invalid_request_error`) naming the bad field;
- `chat_completion_to_message(completion, ...)`: a `chat.completion` -> an Anthropic `Message`;
- `anthropic_stream.StreamTranslator` (beside this module): chunks -> Anthropic events;
- `error_body` / `error_type_for_status`: Anthropic's error shape.

What does not translate, and what happens to it (the contract users see):

- `top_k`: dropped. OpenAI's protocol has no such field; sampling stays the supplier's.
- `thinking`: accepted and ignored (checked for shape): the answer simply has no thinking
  blocks, which every Anthropic client handles. `thinking` / `redacted_thinking` blocks
  sent back in the history are dropped for the same reason.
- `cache_control` (top level or on blocks), `service_tier`, `context_management`, `speed`,
  `output_config.effort`: accepted and ignored (hints about Anthropic's own caching,
  capacity and models). `inference_geo` and `container` are accepted only when null.
- `output_config.format` (structured outputs, a JSON schema) becomes OpenAI's
  `response_format: {"type": "json_schema", ...}`.
- `max_tokens` must be at least 1 (Anthropic's 0, "only warm the prompt cache", has nothing
  to warm here).
- `tool_result.is_error: true`: the tool message's text is prefixed with `Error: `, since
  OpenAI's tool messages have no error flag. Images inside a tool result follow the tool
  messages as a user message (OpenAI's tool messages carry text only).
- Server tools (`web_search_...`, `bash_...`, ...), `document`, `search_result` and file
  sources, `mcp_servers`, `container` and any other unknown field: refused with a 400
  naming the field, never silently dropped.
- `stop_reason: "stop_sequence"` needs the supplier to say which stop string matched: it is
  reported when the choice carries vLLM's `stop_reason` string and it is one of the
  request's `stop_sequences`; otherwise a stop reads `end_turn`.
- Tool-call arguments that are not a JSON object reach the client as
  `{"_raw_arguments": <the text>}` so nothing the model produced is lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Anthropic's error `type` by HTTP status (https://docs.claude.com/en/api/errors).
ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

MAX_MESSAGES = 10_000
MAX_BLOCKS_PER_MESSAGE = 1_000
MAX_TOOLS = 512
MAX_STOP_SEQUENCES = 16
MAX_MAX_TOKENS = 1_000_000
MAX_MODEL_ID_CHARS = 256

_IGNORED_FIELDS = frozenset({"cache_control", "service_tier", "context_management", "speed"})
#: Honoured only when null: each asks for something a supplier here cannot promise.
_NULL_ONLY_FIELDS = frozenset({"inference_geo", "container"})
_KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
    }
)
_FINISH_TO_STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


class TranslationError(Exception):
    """A request the Anthropic surface refuses with 400 `invalid_request_error`."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = f"{param}: {message}" if param else message
        self.param = param


class UpstreamShapeError(Exception):
    """The supplier's answer cannot be read as a chat completion (a 502 `api_error`)."""


def error_type_for_status(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str, request_id: str | None) -> dict[str, Any]:
    """Anthropic's error object, for a response body or an in-band `error` event."""
    return {
        "type": "error",
        "error": {"type": error_type_for_status(status), "message": message},
        "request_id": request_id,
    }


# --- request: Anthropic -> OpenAI -------------------------------------------------------


def messages_request_to_openai(body: Any, *, count_only: bool = False) -> dict[str, Any]:
    """The OpenAI chat request for an Anthropic Messages body. With `count_only` (the body
    of `/v1/messages/count_tokens`) `max_tokens` is not required and sampling is ignored."""
    if not isinstance(body, dict):
        raise TranslationError("the request body must be a JSON object")
    for field in body:
        if field in _NULL_ONLY_FIELDS and body[field] is None:
            continue
        if field not in _KNOWN_FIELDS and field not in _IGNORED_FIELDS:
            raise TranslationError("is not supported by this gateway", param=str(field))
    model = body.get("model")
    if not isinstance(model, str) or not 0 < len(model) <= MAX_MODEL_ID_CHARS:
        raise TranslationError("must be an instrument id (a non-empty string)", param="model")
    messages = _system_messages(body.get("system"))
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise TranslationError("must be a non-empty list", param="messages")
    if len(raw_messages) > MAX_MESSAGES:
        raise TranslationError(f"at most {MAX_MESSAGES} messages", param="messages")
    for i, message in enumerate(raw_messages):
        messages.extend(_message(message, f"messages.{i}"))
    request: dict[str, Any] = {"model": model, "messages": messages}
    tools = body.get("tools")
    if tools is not None:
        request["tools"] = _tools(tools)
    if "tool_choice" in body:
        request.update(_tool_choice(body["tool_choice"], has_tools=bool(request.get("tools"))))
    _check_thinking(body.get("thinking"))
    request.update(_output_config(body.get("output_config")))
    if count_only:
        return request
    request["max_tokens"] = _int(body.get("max_tokens"), "max_tokens", 1, MAX_MAX_TOKENS)
    for field in ("temperature", "top_p"):
        if body.get(field) is not None:
            request[field] = _unit_interval(body[field], field)
    if body.get("top_k") is not None:
        _int(body["top_k"], "top_k", 0, MAX_MAX_TOKENS)  # checked, then dropped (see above)
    stops = stop_sequences(body)
    if stops:
        request["stop"] = stops
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TranslationError("must be an object", param="metadata")
        user_id = metadata.get("user_id")
        if user_id is not None:
            if not isinstance(user_id, str) or len(user_id) > 256:
                raise TranslationError("must be a string of at most 256 characters", "user_id")
            request["user"] = user_id
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise TranslationError("must be a boolean", param="stream")
    if stream:
        # Usage is always asked for: `message_delta` carries it, and metering needs it.
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def stop_sequences(body: Mapping[str, Any]) -> list[str]:
    raw = body.get("stop_sequences")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(s, str) and s for s in raw):
        raise TranslationError("must be a list of non-empty strings", param="stop_sequences")
    if len(raw) > MAX_STOP_SEQUENCES:
        raise TranslationError(f"at most {MAX_STOP_SEQUENCES}", param="stop_sequences")
    return list(raw)


def _int(value: Any, param: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TranslationError(f"must be an integer from {low} to {high}", param=param)
    return value


def _unit_interval(value: Any, param: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise TranslationError("must be a number from 0 to 1", param=param)
    return value


def _check_thinking(thinking: Any) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in (
        "enabled",
        "disabled",
        "adaptive",
    ):
        raise TranslationError("must be {'type': 'enabled' | 'disabled' | ...}", "thinking")


def _output_config(config: Any) -> dict[str, Any]:
    """`output_config.format` (structured outputs) -> OpenAI's `response_format`; `effort`
    is checked and ignored (the supplier's model has no effort setting)."""
    if config is None:
        return {}
    if not isinstance(config, dict) or set(config) - {"effort", "format"}:
        raise TranslationError("must be {'effort': ..., 'format': ...}", "output_config")
    effort = config.get("effort")
    if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
        raise TranslationError("must be low, medium, high, xhigh or max", "output_config.effort")
    output_format = config.get("format")
    if output_format is None:
        return {}
    if (
        not isinstance(output_format, dict)
        or output_format.get("type") != "json_schema"
        or not isinstance(output_format.get("schema"), dict)
    ):
        raise TranslationError(
            "must be {'type': 'json_schema', 'schema': {...}}", "output_config.format"
        )
    json_schema = {"name": "output", "schema": output_format["schema"], "strict": True}
    return {"response_format": {"type": "json_schema", "json_schema": json_schema}}


def _system_messages(system: Any) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if not isinstance(system, list):
        raise TranslationError("must be a string or a list of text blocks", param="system")
    texts = [_text_of(block, f"system.{i}") for i, block in enumerate(system)]
    return [{"role": "system", "content": "\n".join(texts)}] if texts else []


def _text_of(block: Any, param: str) -> str:
    if not isinstance(block, dict) or block.get("type") != "text":
        raise TranslationError("must be a text block", param=param)
    text = block.get("text")
    if not isinstance(text, str):
        raise TranslationError("must be a string", param=f"{param}.text")
    return text


def _blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise TranslationError("must be a string or a list of content blocks", param=param)
    if len(content) > MAX_BLOCKS_PER_MESSAGE:
        raise TranslationError(f"at most {MAX_BLOCKS_PER_MESSAGE} blocks", param=param)
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise TranslationError("must be a content block with a type", f"{param}.{i}")
    return content


def _message(message: Any, param: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        raise TranslationError("must be an object", param=param)
    role = message.get("role")
    blocks = _blocks(message.get("content"), f"{param}.content")
    if role == "user":
        return _user_message(blocks, f"{param}.content")
    if role == "assistant":
        return [_assistant_message(blocks, f"{param}.content")]
    raise TranslationError("must be 'user' or 'assistant'", param=f"{param}.role")


def _user_message(blocks: list[dict[str, Any]], param: str) -> list[dict[str, Any]]:
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        where = f"{param}.{i}"
        kind = block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": _text_of(block, where)})
        elif kind == "image":
            parts.append(_image(block, where))
        elif kind == "tool_result":
            tool_message, images = _tool_result(block, where)
            tool_messages.append(tool_message)
            parts.extend(images)
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise TranslationError(f"content block type {kind!r} is not supported", where)
    out = list(tool_messages)
    if parts:
        out.append({"role": "user", "content": _openai_content(parts)})
    elif not tool_messages:
        out.append({"role": "user", "content": ""})
    return out


def _openai_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A plain string when there is only text (what every chat template reads), else parts."""
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def _image(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise TranslationError("must be an object", param=f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not media_type.startswith("image/"):
            raise TranslationError("must be an image media type", f"{param}.source.media_type")
        if not isinstance(data, str) or not data:
            raise TranslationError("must be base64 text", param=f"{param}.source.data")
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TranslationError("must be an http(s) URL", param=f"{param}.source.url")
        return {"type": "image_url", "image_url": {"url": url}}
    raise TranslationError("must be 'base64' or 'url'", param=f"{param}.source.type")


def _tool_result(block: dict[str, Any], param: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise TranslationError("must be a non-empty string", param=f"{param}.tool_use_id")
    content = block.get("content", "")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for i, inner in enumerate(content):
            where = f"{param}.content.{i}"
            if isinstance(inner, dict) and inner.get("type") == "image":
                images.append(_image(inner, where))
            else:
                texts.append(_text_of(inner, where))
    else:
        raise TranslationError("must be a string or a list of blocks", f"{param}.content")
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise TranslationError("must be a boolean", param=f"{param}.is_error")
    text = "\n".join(texts)
    if is_error:
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _assistant_message(blocks: list[dict[str, Any]], param: str) -> dict[str, Any]:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        where = f"{param}.{i}"
        kind = block["type"]
        if kind == "text":
            texts.append(_text_of(block, where))
        elif kind == "tool_use":
            tool_calls.append(_tool_call(block, where))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise TranslationError(f"content block type {kind!r} is not supported", where)
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def _tool_call(block: dict[str, Any], param: str) -> dict[str, Any]:
    tool_id, name, tool_input = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(tool_id, str) or not tool_id:
        raise TranslationError("must be a non-empty string", param=f"{param}.id")
    if not isinstance(name, str) or not name:
        raise TranslationError("must be a non-empty string", param=f"{param}.name")
    if not isinstance(tool_input, dict):
        raise TranslationError("must be an object", param=f"{param}.input")
    arguments = json.dumps(tool_input, ensure_ascii=False)
    return {"id": tool_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise TranslationError("must be a list", param="tools")
    if len(tools) > MAX_TOOLS:
        raise TranslationError(f"at most {MAX_TOOLS} tools", param="tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise TranslationError("must be an object", param=where)
        if tool.get("type", "custom") != "custom":
            raise TranslationError(f"server tool {tool.get('type')!r} is not supported", where)
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise TranslationError("must be a non-empty string", param=f"{where}.name")
        if not isinstance(schema, dict):
            raise TranslationError("must be a JSON Schema object", f"{where}.input_schema")
        function: dict[str, Any] = {"name": name, "parameters": schema}
        description = tool.get("description")
        if description is not None:
            if not isinstance(description, str):
                raise TranslationError("must be a string", param=f"{where}.description")
            function["description"] = description
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any, *, has_tools: bool) -> dict[str, Any]:
    if not isinstance(choice, dict):
        raise TranslationError("must be an object", param="tool_choice")
    kind = choice.get("type")
    out: dict[str, Any]
    if kind == "auto":
        out = {"tool_choice": "auto"}
    elif kind == "any":
        out = {"tool_choice": "required"}
    elif kind == "none":
        out = {"tool_choice": "none"}
    elif kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise TranslationError("must be a non-empty string", param="tool_choice.name")
        out = {"tool_choice": {"type": "function", "function": {"name": name}}}
    else:
        raise TranslationError("must be auto, any, tool or none", param="tool_choice.type")
    if kind != "none" and not has_tools:
        raise TranslationError("needs `tools`", param="tool_choice")
    disable_parallel = choice.get("disable_parallel_tool_use")
    if disable_parallel is not None:
        if not isinstance(disable_parallel, bool):
            raise TranslationError("must be a boolean", "tool_choice.disable_parallel_tool_use")
        if has_tools:
            out["parallel_tool_calls"] = not disable_parallel
    return out


# --- response: OpenAI -> Anthropic ------------------------------------------------------


def empty_usage(input_tokens: int = 0, output_tokens: int = 0) -> dict[str, Any]:
    """Anthropic's `Usage`, every optional part null (nothing is cached on a supplier)."""
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation": None,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
        "inference_geo": None,
        "output_tokens_details": None,
        "server_tool_use": None,
        "service_tier": None,
    }


def stop_reason(
    finish_reason: Any, *, used_tools: bool, matched_stop: Any, stops: list[str]
) -> tuple[str, str | None]:
    """Anthropic's `(stop_reason, stop_sequence)` for an OpenAI finish reason."""
    if used_tools and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use", None
    if finish_reason == "stop" and isinstance(matched_stop, str) and matched_stop in stops:
        return "stop_sequence", matched_stop
    return _FINISH_TO_STOP_REASON.get(finish_reason, "end_turn"), None


def tool_use_id(raw: Any, fallback: str) -> str:
    """Anthropic ids match `^[a-zA-Z0-9_-]+$`; a supplier's id is kept when it does (it comes
    back as `tool_use_id`, then as OpenAI's `tool_call_id`), else mapped onto that alphabet."""
    if not isinstance(raw, str) or not raw:
        return fallback
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in raw)


def tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {"_raw_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def usage_tokens(usage: Any) -> tuple[int, int]:
    """`(input_tokens, output_tokens)` of an OpenAI `usage` (zeros when absent or malformed)."""
    if not isinstance(usage, dict):
        return 0, 0
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        prompt if isinstance(prompt, int) and prompt >= 0 else 0,
        completion if isinstance(completion, int) and completion >= 0 else 0,
    )


def chat_completion_to_message(
    completion: Any, *, message_id: str, model: str, stops: list[str]
) -> dict[str, Any]:
    """The Anthropic `Message` for a non-streaming OpenAI `chat.completion` (its first choice).
    `model` is the instrument id; `stops` are the request's `stop_sequences`."""
    if not isinstance(completion, dict):
        raise UpstreamShapeError("the completion is not an object")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamShapeError("the completion has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise UpstreamShapeError("the completion's choice has no message")
    content: list[dict[str, Any]] = []
    text = message.get("content")
    refusal = message.get("refusal")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text, "citations": None})
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal, "citations": None})
    raw_calls = message.get("tool_calls")
    for i, call in enumerate(raw_calls if isinstance(raw_calls, list) else []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise UpstreamShapeError("a tool call has no function name")
        content.append(
            {
                "type": "tool_use",
                "id": tool_use_id(call.get("id"), f"toolu_{message_id}_{i}"),
                "name": function["name"],
                "input": tool_input(function.get("arguments")),
                "caller": {"type": "direct"},
            }
        )
    used_tools = any(block["type"] == "tool_use" for block in content)
    reason, sequence = stop_reason(
        choice.get("finish_reason"),
        used_tools=used_tools,
        matched_stop=choice.get("stop_reason"),
        stops=stops,
    )
    if isinstance(refusal, str) and refusal and not used_tools:
        reason, sequence = "refusal", None
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": model,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "stop_details": None,
        "container": None,
        "usage": empty_usage(*usage_tokens(completion.get("usage"))),
    }

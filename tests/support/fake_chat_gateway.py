"""A deterministic in-process `ChatGateway` (gateway/contract.py) for testing the surfaces.

It knows one instrument, `text-local` (any case), and one consumption key per account in
`keys`. Answers are computed from the request, so tests can predict them:

- a request with `tools` whose last message is not a tool result calls the first tool (or the
  one `tool_choice` names) with `{"query": <last user text>}`; `finish_reason: tool_calls`;
- otherwise the answer is `echo: <last message text>` (a tool result reads `tool said: ...`),
  cut at the first `stop` string found (`finish_reason: stop`, and vLLM's `stop_reason`
  naming it) or after `max_tokens` words (`finish_reason: length`);
- usage: `prompt_tokens` = `count_prompt_tokens` (words of every message and tool, plus 3 per
  message), `completion_tokens` = words of the answer (plus 5 per tool call).

Models named `error-<kind>` raise `GatewayError(kind, ...)` (429 and 503 with
`retry_after_s=2`); in streams the error comes before the first chunk. `interrupt` streams
two chunks and raises `StreamInterrupted`; `slow` waits `slow_delay_s` before each chunk;
`no-finish` ends its stream without a finish reason. Every call is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from gridmarket.gateway.contract import Caller, GatewayError, StreamInterrupted

INSTRUMENT = "text-local"
CREATED = 1_700_000_000


class FakeChatGateway:
    def __init__(self, keys: dict[str, Caller] | None = None) -> None:
        self.keys = keys or {}
        self.calls: list[tuple[str, Caller | None, dict[str, Any]]] = []
        self.slow_delay_s = 0.0
        self.streams_closed = 0
        self.streams_completed = 0

    async def authenticate(self, raw_key: str) -> Caller:
        caller = self.keys.get(raw_key)
        if caller is None:
            raise GatewayError("authentication", "invalid_api_key", "invalid consumption key")
        return caller

    async def count_prompt_tokens(self, instrument_id: str, request: dict[str, Any]) -> int:
        self._instrument(instrument_id)
        self.calls.append(("count", None, request))
        return prompt_tokens(request)

    async def chat(self, caller: Caller, request: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("chat", caller, request))
        instrument = self._instrument(request["model"])
        answer = _answer(request)
        message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
        if answer.tool_call:
            message["tool_calls"] = [answer.tool_call]
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "finish_reason": answer.finish_reason,
            "logprobs": None,
        }
        if answer.matched_stop:
            choice["stop_reason"] = answer.matched_stop
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": CREATED,
            "model": instrument,
            "choices": [choice],
            "usage": answer.usage(prompt_tokens(request)),
        }

    def chat_stream(
        self,
        caller: Caller,
        request: dict[str, Any],
        *,
        prompt_counted: Callable[[int], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(("chat_stream", caller, request))
        return self._stream(request, prompt_counted)

    async def _stream(
        self, request: dict[str, Any], prompt_counted: Callable[[int], None] | None
    ) -> AsyncIterator[dict[str, Any]]:
        instrument = self._instrument(request["model"])
        if prompt_counted is not None:
            prompt_counted(prompt_tokens(request))
        answer = _answer(request)
        model = str(request["model"]).lower()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "finish_reason": finish,
                "logprobs": None,
            }
            if finish == "stop" and answer.matched_stop:
                choice["stop_reason"] = answer.matched_stop
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": instrument,
                "choices": [choice],
            }

        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        for i, word in enumerate(answer.text.split(" ") if answer.text else []):
            deltas.append({"content": word if i == 0 else " " + word})
        if answer.tool_call:
            call, arguments = answer.tool_call, answer.tool_call["function"]["arguments"]
            head = {"index": 0, "id": call["id"], "type": "function"}
            deltas.append(
                {"tool_calls": [{**head, "function": {"name": call["function"]["name"]}}]}
            )
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
        try:
            for i, delta in enumerate(deltas):
                if model == "interrupt" and i == 2:
                    raise StreamInterrupted("upstream_error", "the supplier went away")
                if model == "slow":
                    await asyncio.sleep(self.slow_delay_s)
                yield chunk(delta)
            if model == "no-finish":
                return
            yield chunk({}, answer.finish_reason)
            if (request.get("stream_options") or {}).get("include_usage"):
                usage_chunk = chunk({})
                usage_chunk["choices"] = []
                usage_chunk["usage"] = answer.usage(prompt_tokens(request))
                yield usage_chunk
            self.streams_completed += 1
        finally:
            self.streams_closed += 1

    def _instrument(self, model: Any) -> str:
        name = str(model).lower()
        if name.startswith("error-"):
            kind = name.removeprefix("error-")
            if kind not in GatewayError.STATUS:
                kind = "internal"
            retry = 2 if kind in ("rate_limit", "overloaded") else None
            raise GatewayError(kind, f"fake_{kind}", f"fake {kind} failure", retry_after_s=retry)
        if name not in (INSTRUMENT, "interrupt", "slow", "no-finish"):
            raise GatewayError("not_found", "model_not_found", f"no instrument {model!r}")
        return INSTRUMENT if name == INSTRUMENT else name


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(request: dict[str, Any]) -> int:
    words = 0
    for message in request.get("messages", []):
        words += 3 + len(_text(message.get("content")).split())
        for call in message.get("tool_calls") or []:
            words += len(call["function"]["arguments"].split())
    for tool in request.get("tools") or []:
        words += len(json.dumps(tool).split())
    return words


class _Answer:
    def __init__(self) -> None:
        self.text = ""
        self.tool_call: dict[str, Any] | None = None
        self.finish_reason = "stop"
        self.matched_stop: str | None = None

    def usage(self, prompt: int) -> dict[str, int]:
        completion = len(self.text.split()) + (5 if self.tool_call else 0)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


def _answer(request: dict[str, Any]) -> _Answer:
    answer = _Answer()
    messages = request["messages"]
    last = messages[-1]
    tools = request.get("tools") or []
    choice = request.get("tool_choice")
    if tools and last["role"] != "tool" and choice != "none":
        name = tools[0]["function"]["name"]
        if isinstance(choice, dict):
            name = choice["function"]["name"]
        last_user = next(m for m in reversed(messages) if m["role"] == "user")
        arguments = json.dumps({"query": _text(last_user["content"])})
        answer.tool_call = {
            "id": f"call_{len(messages)}",
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        answer.finish_reason = "tool_calls"
        return answer
    prefix = "tool said: " if last["role"] == "tool" else "echo: "
    text = prefix + _text(last["content"])
    for stop in request.get("stop") or []:
        if stop in text:
            text = text[: text.index(stop)]
            answer.matched_stop = stop
            break
    words = text.split(" ")
    if len(words) > request.get("max_tokens", 1_000_000):
        text = " ".join(words[: request["max_tokens"]])
        answer.finish_reason = "length"
        answer.matched_stop = None
    answer.text = text
    return answer

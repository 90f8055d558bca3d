"""OpenAI `chat.completion.chunk`s -> Anthropic's stream events, as a pure state machine.

Anthropic's sequence (https://docs.claude.com/en/docs/build-with-claude/streaming):
`message_start`, then per content block `content_block_start`, its `content_block_delta`s
(`text_delta` or `input_json_delta`) and `content_block_stop`, then one `message_delta`
(`stop_reason`, `stop_sequence`, usage) and `message_stop`. `ping` and in-band `error`
events are the surface's business (`api/anthropic_messages.py`): this module only translates.
"""

from __future__ import annotations

from typing import Any

from gridmarket.gateway.anthropic_translate import (
    UpstreamShapeError,
    empty_usage,
    stop_reason,
    tool_use_id,
    usage_tokens,
)

Event = tuple[str, dict[str, Any]]
"""An SSE event: its `event:` name and its `data:` object."""


class StreamTranslator:
    """Turns a stream of `chat.completion.chunk`s into Anthropic's events: `start()` once,
    `feed(chunk)` per chunk, then `finish()`. Blocks are opened and closed in order (a text
    block, then one block per tool call); a tool call's arguments stream as
    `input_json_delta`s. Raises `UpstreamShapeError` when the chunks cannot be translated
    (e.g. a tool call resumed after another began); the surface sends that in-band."""

    def __init__(self, *, message_id: str, model: str, input_tokens: int, stops: list[str]):
        self.message_id = message_id
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = 0
        self.stops = stops
        self.finish_reason: Any = None
        self.matched_stop: Any = None
        self._next_index = 0
        self._open: tuple[str, int | None] | None = None  # ("text", None) | ("tool", i)
        self._closed_tools: set[int] = set()
        self._pending_tools: dict[int, dict[str, Any]] = {}
        self._used_tools = False

    def start(self) -> list[Event]:
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model,
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": empty_usage(self.input_tokens, 0),
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def feed(self, chunk: Any) -> list[Event]:
        if not isinstance(chunk, dict):
            raise UpstreamShapeError("a stream chunk is not an object")
        if isinstance(chunk.get("usage"), dict):
            prompt, completion = usage_tokens(chunk["usage"])
            self.input_tokens = prompt or self.input_tokens
            self.output_tokens = completion
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]
            self.matched_stop = choice.get("stop_reason")
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return []
        events: list[Event] = []
        text = delta.get("content")
        if isinstance(text, str) and text:
            events += self._text(text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            events += self._tool_fragment(call)
        return events

    def finish(self) -> list[Event]:
        """The closing events; `UpstreamShapeError` if the stream never said why it ended."""
        if self.finish_reason is None:
            raise UpstreamShapeError("the supplier's stream ended without a finish reason")
        if self._pending_tools:
            raise UpstreamShapeError("a tool call in the stream never said its name")
        events = self._close()
        reason, sequence = stop_reason(
            self.finish_reason,
            used_tools=self._used_tools,
            matched_stop=self.matched_stop,
            stops=self.stops,
        )
        usage = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
            "output_tokens_details": None,
            "server_tool_use": None,
        }
        delta = {
            "stop_reason": reason,
            "stop_sequence": sequence,
            "stop_details": None,
            "container": None,
        }
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def _text(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._open is None or self._open[0] != "text":
            events += self._close()
            block = {"type": "text", "text": "", "citations": None}
            events.append(self._start_block(("text", None), block))
        delta = {"type": "text_delta", "text": text}
        events.append(("content_block_delta", self._delta(delta)))
        return events

    def _tool_fragment(self, call: Any) -> list[Event]:
        if not isinstance(call, dict) or not isinstance(call.get("index", 0), int):
            raise UpstreamShapeError("a tool call fragment is malformed")
        index = call.get("index", 0)
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        assert isinstance(function, dict)
        if index in self._closed_tools:
            raise UpstreamShapeError("a tool call resumed after another one began")
        events: list[Event] = []
        if self._open != ("tool", index):
            pending = self._pending_tools.setdefault(index, {"id": None, "name": "", "args": ""})
            if call.get("id"):
                pending["id"] = call["id"]
            if isinstance(function.get("name"), str):
                pending["name"] += function["name"]
            if isinstance(function.get("arguments"), str):
                pending["args"] += function["arguments"]
            if not pending["name"]:
                return []  # the name comes first in every supplier seen; wait for it
            events += self._close()
            del self._pending_tools[index]
            block = {
                "type": "tool_use",
                "id": tool_use_id(pending["id"], f"toolu_{self.message_id}_{index}"),
                "name": pending["name"],
                "input": {},
                "caller": {"type": "direct"},
            }
            events.append(self._start_block(("tool", index), block))
            self._used_tools = True
            if pending["args"]:
                delta = {"type": "input_json_delta", "partial_json": pending["args"]}
                events.append(("content_block_delta", self._delta(delta)))
            return events
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append(("content_block_delta", self._delta(delta)))
        return events

    def _start_block(self, which: tuple[str, int | None], block: dict[str, Any]) -> Event:
        self._open = which
        data = {"type": "content_block_start", "index": self._next_index, "content_block": block}
        return ("content_block_start", data)

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self._next_index, "delta": delta}

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        kind, tool_index = self._open
        if kind == "tool" and tool_index is not None:
            self._closed_tools.add(tool_index)
        event = ("content_block_stop", {"type": "content_block_stop", "index": self._next_index})
        self._open = None
        self._next_index += 1
        return [event]

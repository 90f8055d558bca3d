"""A deterministic OpenAI-compatible upstream for tests: a Starlette app on a free loopback port,
served by uvicorn in a thread of the test process.

    with FakeUpstream("a") as upstream:       # upstream.base_url == "http://127.0.0.1:<p>/v1"
        ...                                   # upstream.requests: every body it received

The answer to a request is a function of its messages only:

- text: `echo: ` + the words of the last user message (or `tool said: ...` after a tool
  result), one word per streamed chunk; `max_tokens`/`max_completion_tokens` cut it
  (`finish_reason: length`);
- usage is exact in this upstream's own counting: prompt tokens = the words of every message's
  text (+ the words of the tools' JSON), completion tokens = the words generated;
- with `tools` (and `tool_choice` not `none`) and a last message from the user, a call of the
  first tool with `{"echo": "<last user text>"}` (`finish_reason: tool_calls`);
- `n` identical choices.

Failure modes, chosen by a `#mode:<name>` word in the last user message (`#mode:<name>@<upstream
name>` applies to that upstream only, so a test can fail one of two):

    fail500     500 before the first byte          context400  a 400 context_length_exceeded
    disconnect  3 chunks, then the connection drops nousage     no usage reported
    nodone      a clean end without `data: [DONE]` nofinish    no finish_reason
    empty       a 200 with no events / no choices  slow        `#slow:<s>` (default 3) before
    trickle     0.1 s between chunks (a long answer, for disconnect tests)   the first byte
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from threaded_server import ThreadedServer

_MODE = re.compile(r"#mode:([a-z0-9]+)(?:@([a-z0-9_-]+))?")
_SLOW = re.compile(r"#slow:([0-9.]+)")


def words(text: str) -> list[str]:
    return text.split()


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def prompt_tokens(body: dict[str, Any]) -> int:
    count = sum(len(words(message_text(m))) for m in body["messages"])
    if body.get("tools"):
        count += len(words(json.dumps(body["tools"])))
    return count


class FakeUpstream(ThreadedServer):
    def __init__(self, name: str = "a") -> None:
        self.name = name
        self.requests: list[dict[str, Any]] = []
        #: The client (host, port) of each request: one per TCP connection the caller used.
        self.peers: list[tuple[str, int]] = []
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        super().__init__(app, "the fake upstream")
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def modes_of(self, body: dict[str, Any]) -> tuple[str, float]:
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        text = message_text(users[-1]) if users else ""
        mode = ""
        for match in _MODE.finditer(text):
            if match.group(2) in (None, self.name):
                mode = match.group(1)
        slow = _SLOW.search(text)
        return mode, float(slow.group(1)) if slow else 3.0

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        if request.client is not None:
            self.peers.append((request.client.host, request.client.port))
        mode, slow_s = self.modes_of(body)
        if mode == "fail500":
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
        if mode == "context400":
            error = {
                "message": "This model's maximum context length is 8192 tokens",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
            return JSONResponse({"error": error}, 400)
        if mode == "slow":
            await asyncio.sleep(slow_s)
        choices, completion = answer(body)
        usage = {
            "prompt_tokens": prompt_tokens(body),
            "completion_tokens": completion,
            "total_tokens": prompt_tokens(body) + completion,
        }
        if not body.get("stream"):
            if mode == "empty":
                return JSONResponse({"id": "x", "object": "chat.completion", "choices": []})
            result: dict[str, Any] = {
                "id": "chatcmpl-upstream",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {
                        "index": i,
                        "message": message,
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                    for i, (message, finish) in enumerate(choices)
                ],
            }
            if mode != "nousage":
                result["usage"] = usage
            return JSONResponse(result)
        events = self._events(body, mode, choices, usage)
        return StreamingResponse(events, media_type="text/event-stream")

    async def _events(
        self,
        body: dict[str, Any],
        mode: str,
        choices: list[tuple[dict[str, Any], str]],
        usage: dict[str, Any],
    ) -> AsyncIterator[bytes]:
        def event(data: Any) -> bytes:
            return f"data: {json.dumps(data)}\n\n".encode()

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
            return event(
                {
                    "id": "chatcmpl-upstream",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": body["model"],
                    "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
                }
            )

        if mode == "empty":
            return
        sent = 0
        for index, (message, finish) in enumerate(choices):
            yield chunk(index, {"role": "assistant", "content": ""})
            pieces: list[dict[str, Any]] = []
            if message.get("tool_calls"):
                call = message["tool_calls"][0]
                pieces.append(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                arguments = call["function"]["arguments"]
                half = len(arguments) // 2
                for part in (arguments[:half], arguments[half:]):
                    pieces.append({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
            else:
                for i, word in enumerate(words(message["content"])):
                    pieces.append({"content": word if i == 0 else " " + word})
            for piece in pieces:
                if mode == "trickle":
                    await asyncio.sleep(0.1)
                yield chunk(index, piece)
                sent += 1
                if mode == "disconnect" and sent == 3:
                    raise ConnectionResetError("the fake upstream drops the connection")
            yield chunk(index, {}, None if mode == "nofinish" else finish)
        if mode != "nousage" and (body.get("stream_options") or {}).get("include_usage"):
            yield event(
                {
                    "id": "chatcmpl-upstream",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": body["model"],
                    "choices": [],
                    "usage": usage,
                }
            )
        if mode != "nodone":
            yield b"data: [DONE]\n\n"


def answer(body: dict[str, Any]) -> tuple[list[tuple[dict[str, Any], str]], int]:
    """The choices ((message, finish_reason) each) and the completion tokens of all of them."""
    messages = body["messages"]
    last = messages[-1]
    tools = body.get("tools") or []
    budget = body.get("max_completion_tokens") or body.get("max_tokens")
    n = body.get("n") or 1
    user_text = " ".join(w for w in words(message_text(last)) if not w.startswith("#"))
    if tools and body.get("tool_choice") != "none" and last.get("role") == "user":
        name = tools[0]["function"]["name"]
        arguments = json.dumps({"echo": user_text})
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        }
        tokens = len(words(name)) + len(words(arguments))
        return [(message, "tool_calls")] * n, tokens * n
    prefix = "tool said:" if last.get("role") == "tool" else "echo:"
    reply = words(f"{prefix} {user_text}")
    finish = "stop"
    if budget is not None and len(reply) > budget:
        reply, finish = reply[:budget], "length"
    text_message = {"role": "assistant", "content": " ".join(reply)}
    return [(text_message, finish)] * n, len(reply) * n

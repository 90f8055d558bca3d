"""A fast, fixed OpenAI-compatible upstream for `bench/gateway.py`: the supplier side of the
gateway benchmark, as cheap as an HTTP server in Python gets, so the figures are the gateway's.

    python bench/fast_upstream.py PORT

`POST /v1/chat/completions` answers a fixed completion of `COMPLETION_TOKENS` tokens with exact
usage; with `"stream": true`, `CHUNKS` content chunks, a finish chunk, a usage chunk (when
`stream_options.include_usage`) and `data: [DONE]`. Nothing is generated: the time measured
is the HTTP round trip, which is exactly what the gateway adds to or not.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CHUNKS = 8
COMPLETION_TOKENS = CHUNKS
PROMPT_TOKENS = 12


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "tok " * COMPLETION_TOKENS},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _stream(model: str, usage: bool) -> AsyncIterator[bytes]:
    yield _chunk(model, {"role": "assistant", "content": ""}, None)
    for _ in range(CHUNKS):
        yield _chunk(model, {"content": "tok "}, None)
    yield _chunk(model, {}, "stop")
    if usage:
        tail = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": _completion(model)["usage"],
        }
        yield b"data: " + json.dumps(tail).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


async def chat(request: Request) -> Response:
    body = await request.json()
    model = str(body.get("model", "bench"))
    if body.get("stream"):
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_stream(model, usage), media_type="text/event-stream")
    return JSONResponse(_completion(model))


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

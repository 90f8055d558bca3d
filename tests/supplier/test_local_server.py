"""The built-in model's OpenAI-compatible server, with the real model, over real HTTP.

One server process for the module (the model loads in about a second); generations are kept
short so that the module stays well under half a minute on two shared cores.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from live_server import free_port

from gridmarket.supplier.local_server import MODEL_NAME

STARTUP_TIMEOUT_S = 60


class ModelServer:
    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "gridmarket.supplier.local_server", "--port"]
        self.process = subprocess.Popen([*command, str(self.port), *extra])
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the model server exited"
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail("the model server did not start")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="module")
def model_server() -> Iterator[ModelServer]:
    server = ModelServer("--queue-depth", "2")
    yield server
    server.stop()


def _chat(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": "Name a color."}],
        "max_tokens": 12,
        "temperature": 0,
        **extra,
    }


async def _stream(client: httpx.AsyncClient, body: dict[str, Any]) -> list[Any]:
    events: list[Any] = []
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_a_chat_completion_reports_text_and_usage(model_server: ModelServer) -> None:
    answer = httpx.post(f"{model_server.url}/v1/chat/completions", json=_chat(), timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL_NAME
    assert body["choices"][0]["message"]["content"].strip()
    usage = body["usage"]
    assert 0 < usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_two_concurrent_streams_both_complete_with_usage(model_server: ModelServer) -> None:
    body = _chat(stream=True, stream_options={"include_usage": True})
    async with httpx.AsyncClient(base_url=model_server.url, timeout=60) as client:
        first, second = await asyncio.gather(_stream(client, body), _stream(client, body))
        plain = (await client.post("/v1/chat/completions", json=_chat())).json()
    for events in (first, second):
        assert events[-1] == "[DONE]"
        chunks = events[:-1]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert text.strip(), "an empty stream: the generations overlapped"
        finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        assert finishes[-1] in ("stop", "length")
        usage_chunk = chunks[-1]
        assert usage_chunk["choices"] == []
        # The same request, deterministic (temperature 0): the stream's usage is the plain one's.
        assert usage_chunk["usage"] == plain["usage"]
        assert text == plain["choices"][0]["message"]["content"]


async def test_a_stream_without_include_usage_has_no_usage_chunk(model_server: ModelServer) -> None:
    async with httpx.AsyncClient(base_url=model_server.url, timeout=60) as client:
        events = await _stream(client, _chat(stream=True, max_tokens=3))
    assert events[-1] == "[DONE]"
    assert all(c["choices"] for c in events[:-1])


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "12"}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"stream": "yes"}, "stream"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"frobnicate": True}, "frobnicate"),
        ({"messages": [{"role": "user", "content": "word " * 9000}]}, "messages"),
    ],
)
def test_bad_input_is_a_400_in_openai_shape(
    model_server: ModelServer, extra: dict[str, Any], param: str
) -> None:
    for stream in (False, True):
        answer = httpx.post(
            f"{model_server.url}/v1/chat/completions",
            json={**_chat(stream=stream), **extra},
            timeout=60,
        )
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param
        assert error["message"]


def test_a_body_that_is_not_json_is_a_400(model_server: ModelServer) -> None:
    answer = httpx.post(f"{model_server.url}/v1/chat/completions", content=b"{nope", timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_json"


async def test_a_full_queue_answers_503(model_server: ModelServer) -> None:
    # Queue depth 2: one generating, two waiting, the fourth refused at once. The first is a
    # long stream, read until its first chunk so the model is surely busy; the waiting two
    # and the fourth go in while it still generates (about a second of counting).
    long_body = _chat(
        messages=[{"role": "user", "content": "Count from 1 to 300, separated by commas."}],
        max_tokens=300,
        stream=True,
    )
    body = _chat(max_tokens=4)
    async with httpx.AsyncClient(base_url=model_server.url, timeout=60) as client:
        async with client.stream("POST", "/v1/chat/completions", json=long_body) as generating:
            assert generating.status_code == 200
            lines = generating.aiter_lines()
            assert (await anext(lines)).startswith("data: ")
            waiting = [
                asyncio.create_task(client.post("/v1/chat/completions", json=body))
                for _ in range(2)
            ]
            await asyncio.sleep(0.3)
            fourth = await client.post("/v1/chat/completions", json=body)
            assert fourth.status_code == 503, fourth.text
            async for _ in lines:
                pass
        answers = [fourth, *await asyncio.gather(*waiting)]
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 503], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.json()["error"]["code"] == "server_overloaded"


async def test_a_client_that_disconnects_frees_the_model(model_server: ModelServer) -> None:
    long = _chat(
        stream=True, max_tokens=2000, messages=[{"role": "user", "content": "Write a long story."}]
    )
    async with httpx.AsyncClient(base_url=model_server.url, timeout=60) as client:
        async with client.stream("POST", "/v1/chat/completions", json=long) as response:
            async for _ in response.aiter_lines():
                break  # first event: then hang up
        started = time.monotonic()
        answer = await client.post("/v1/chat/completions", json=_chat(max_tokens=2))
    assert answer.status_code == 200
    # 2,000 tokens would take ~20 s; a stopped generation frees the model at once.
    assert time.monotonic() - started < 10


def test_models_and_health(model_server: ModelServer) -> None:
    models = httpx.get(f"{model_server.url}/v1/models", timeout=10).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [MODEL_NAME]
    health = httpx.get(f"{model_server.url}/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["context_tokens"] == 8192

"""The OpenAI surface in process, over a scripted gateway: internal failures are 500s in
OpenAI's shape (or in-band once a stream has begun), and hostile bodies are 400s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridmarket.api import openai_chat
from gridmarket.api.app import create_app
from gridmarket.gateway.contract import Caller, SupplierDirectory, SupplierEndpoint
from gridmarket.settings import Settings

KEY = "gm-" + "k" * 43


class Scripted:
    """A gateway whose calls fail with a bug, before or after a first chunk."""

    async def authenticate(self, raw_key: str) -> Caller:
        return Caller("acct", "ck")

    async def chat(self, caller: Caller, request: dict[str, Any], **_: Any) -> dict[str, Any]:
        raise RuntimeError("a bug")

    def chat_stream(
        self, caller: Caller, request: dict[str, Any], **_: Any
    ) -> AsyncIterator[dict[str, Any]]:
        async def chunks() -> AsyncIterator[dict[str, Any]]:
            yield {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": []}
            raise RuntimeError("a bug mid-stream")

        return chunks()


@pytest.fixture
def client(tmp_path: Path) -> httpx.AsyncClient:
    app = create_app(Settings.resolve(data_dir=tmp_path, environ={}))
    app.include_router(openai_chat.router)
    app.state.gateway = Scripted()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {KEY}"}
    return httpx.AsyncClient(transport=transport, base_url="http://gm", headers=headers)


async def test_a_bug_is_a_500_in_openai_shape(client: httpx.AsyncClient) -> None:
    body = {"model": "text-prime", "messages": [{"role": "user", "content": "x"}]}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "internal error",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    assert response.headers["x-request-id"]


async def test_a_bug_after_the_first_chunk_is_sent_in_band(client: httpx.AsyncClient) -> None:
    body = {"model": "text-prime", "messages": [], "stream": True}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    events = [line for line in response.text.split("\n\n") if line]
    assert events[0].startswith("data: {")
    assert '"code":"internal_error"' in events[-1]
    assert "[DONE]" not in response.text


async def test_deeply_nested_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", content=b"[" * 200_000)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_configured_endpoints_join_a_directory_made_earlier(tmp_path: Path) -> None:
    entry = "text-local=http://127.0.0.1:9/v1;name=conf"
    app = create_app(Settings.resolve(data_dir=tmp_path, environ={}, suppliers=[entry]))
    app.include_router(openai_chat.router)
    earlier = SupplierDirectory()
    builtin = SupplierEndpoint("builtin", "text-local", "http://127.0.0.1:8/v1", "m")
    earlier.add(builtin)
    app.state.supplier_directory = earlier
    async with app.router.lifespan_context(app):
        names = [e.name for e in app.state.supplier_directory.for_instrument("text-local")]
        assert app.state.supplier_directory is earlier
        assert names == ["", "conf"]
        assert app.state.gateway is None  # no market service in this app

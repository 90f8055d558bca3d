"""Every request body is bounded: over 1 MiB is a 413 in the error envelope, declared or chunked."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import Request

from gridmarket.api.app import create_app
from gridmarket.api.limits import CONSUMPTION_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES
from gridmarket.settings import Settings


async def _client(tmp_path: Path) -> httpx.AsyncClient:
    app = create_app(Settings.resolve(data_dir=tmp_path, environ={}))

    @app.post("/test/echo-length")
    async def echo_length(request: Request) -> dict[str, int]:  # reads the whole body
        return {"bytes": len(await request.body())}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_declared_oversized_body_is_refused_unread(tmp_path: Path) -> None:
    async with await _client(tmp_path) as client:
        response = await client.post("/v1/health", content=b"x" * (DEFAULT_MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert response.json()["errors"]["code"] == "request_too_large"


async def test_a_chunked_oversized_body_is_refused(tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 65_536  # 1.25 MiB in all, no content-length

    async with await _client(tmp_path) as client:
        response = await client.post("/test/echo-length", content=chunks())
    assert response.status_code == 413
    assert response.json()["errors"]["code"] == "request_too_large"


async def test_a_body_at_the_limit_reaches_the_route(tmp_path: Path) -> None:
    async with await _client(tmp_path) as client:
        response = await client.post("/test/echo-length", content=b"x" * DEFAULT_MAX_BODY_BYTES)
    assert response.status_code == 200
    assert response.json() == {"bytes": DEFAULT_MAX_BODY_BYTES}


async def test_consumption_paths_take_larger_bodies_and_refuse_in_their_own_shape(
    tmp_path: Path,
) -> None:
    over_trading = b"x" * (DEFAULT_MAX_BODY_BYTES + 1)
    over_consumption = b"x" * (CONSUMPTION_MAX_BODY_BYTES + 1)
    async with await _client(tmp_path) as client:
        # Over the Trading limit but within the consumption one: it reaches routing (no such
        # route in this bare app: 404 or 405, not 413).
        within = await client.post("/v1/chat/completions", content=over_trading)
        openai = await client.post("/v1/chat/completions", content=over_consumption)
        anthropic = await client.post("/v1/messages", content=over_consumption)
        count = await client.post("/v1/messages/count_tokens", content=over_consumption)
    assert within.status_code != 413
    assert openai.status_code == 413
    assert openai.json()["error"]["code"] == "request_too_large"
    assert openai.json()["error"]["type"] == "invalid_request_error"
    for response in (anthropic, count):
        assert response.status_code == 413
        assert response.json() == {
            "type": "error",
            "error": {
                "type": "request_too_large",
                "message": f"request body larger than {CONSUMPTION_MAX_BODY_BYTES} bytes",
            },
        }

"""Health turns to 503 once the market's sequencer has stopped on a failed commit."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from gridmarket.api.app import create_app
from gridmarket.core.commands import CreateAccount
from gridmarket.core.ids import AccountId
from gridmarket.service.errors import StoreFailed
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings


async def test_health_is_503_after_a_failed_commit(tmp_path: Path) -> None:
    settings = Settings.resolve(data_dir=tmp_path, environ={})
    market = MarketService.from_url(f"sqlite:///{tmp_path / 'm.db'}", tune_gc=False)

    @asynccontextmanager
    async def factory(_settings: Settings) -> AsyncIterator[MarketService]:
        async with market:
            yield market

    app = create_app(settings, service_factory=factory)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/v1/health")).status_code == 200

            def broken_write(_batch: object) -> None:
                raise OSError("disk full")

            market.store.write_prepared = broken_write  # type: ignore[method-assign]
            with pytest.raises(StoreFailed):
                await market.submit(CreateAccount(AccountId("alice")))

            response = await client.get("/v1/health")
            assert response.status_code == 503
            assert response.json()["errors"]["code"] == "market_stopped"

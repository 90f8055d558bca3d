"""The ASGI app: routes, the error envelope, and the market service's lifetime.

`create_app` only assembles; it starts nothing. When the server starts the app, the
lifespan enters the market service (`service_factory(settings)`, an async context manager:
sequencer and store) and exposes its value as `app.state.market`; on shutdown it leaves it,
which stops the service. With no factory, `app.state.market` stays None.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

from fastapi import FastAPI

from gridmarket import __version__
from gridmarket.api import health, market_data
from gridmarket.api.errors import EXCEPTION_HANDLERS
from gridmarket.api.limits import BodySizeLimit
from gridmarket.settings import Settings

log = logging.getLogger(__name__)

ServiceFactory = Callable[[Settings], AbstractAsyncContextManager[object]]
"""Builds the market service for the given settings; entering it starts it, leaving stops it."""


def create_app(settings: Settings, *, service_factory: ServiceFactory | None = None) -> FastAPI:
    """The app for `settings`, running the market service from `service_factory` if given."""
    app = FastAPI(
        title="Gridmarket",
        version=__version__,
        lifespan=_lifespan(settings, service_factory),
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.add_middleware(BodySizeLimit)
    app.state.settings = settings
    app.state.market = None
    app.include_router(health.router)
    app.include_router(market_data.router)
    return app


def _lifespan(
    settings: Settings, service_factory: ServiceFactory | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = nullcontext() if service_factory is None else service_factory(settings)
        async with service as market:
            app.state.market = market
            log.info(
                "gridmarket %s started: data dir %s, database %s, market service %s",
                __version__,
                settings.data_dir,
                settings.database_url_for_logs(),
                "none" if market is None else type(market).__name__,
            )
            yield
            app.state.market = None
        log.info("gridmarket stopped")

    return lifespan

"""The ASGI app: routes, the error envelope, and the market service's lifetime.

`create_app` only assembles; it starts nothing. When the server starts the app, the
lifespan enters the market service (`service_factory(settings)`, an async context manager:
sequencer and store) and exposes its value as `app.state.market`; on shutdown it leaves it,
which stops the service. With no factory, `app.state.market` stays None.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig

from gridmarket import __version__
from gridmarket.api import direct, health, market_data
from gridmarket.api.errors import EXCEPTION_HANDLERS
from gridmarket.api.limits import BodySizeLimit
from gridmarket.settings import Settings

log = logging.getLogger(__name__)

ServiceFactory = Callable[[Settings], AbstractAsyncContextManager[object]]
"""Builds the market service for the given settings; entering it starts it, leaving stops it."""


def create_app(
    settings: Settings,
    *,
    service_factory: ServiceFactory | None = None,
    direct_routes: bool = True,
) -> FastAPI:
    """The app for `settings`, running the market service from `service_factory` if given.

    `direct_routes=False` leaves every request to FastAPI's own dispatch (`api.direct` says
    what the default does instead for the hot signed routes); tests compare the two.
    """
    app = FastAPI(
        title="Gridmarket",
        version=__version__,
        lifespan=_lifespan(settings, service_factory),
        exception_handlers=EXCEPTION_HANDLERS,
        telemetry=None if _otel_configured() else _NO_TELEMETRY,
    )
    if direct_routes:
        direct.install(app)  # outside the whole middleware stack, the body size limit its own
    app.add_middleware(BodySizeLimit)
    app.state.settings = settings
    app.state.market = None
    include_flat(app, health.router)
    include_flat(app, market_data.router)
    return app


#: FastAPI's native OpenTelemetry hooks, off: they only act once an OpenTelemetry SDK provider
#: is set up (Gridmarket ships none; its metrics are Prometheus, at /metrics), yet they ask
#: three providers, through `os.environ`, on every request: a few percent of a signed order.
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def _otel_configured() -> bool:
    """FastAPI's own switch (`FASTAPI_OTEL_AUTO_CONFIGURE=true`) keeps its telemetry on."""
    return os.environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true"


def include_flat(app: FastAPI, router: APIRouter) -> None:
    """Include `router`'s routes in `app` as if they were declared on `app` itself.

    `app.include_router` keeps each router as a nested matcher: FastAPI then walks every
    included router (and the scope bookkeeping of each) for every request, which cost about
    a quarter of a signed order's CPU with our twenty routers. Including the router and then
    putting its routes in its place keeps what the include merged (the router's lifespan) and
    leaves one flat list, matched one pattern at a time in order. The routers carry their own
    prefix, tags and route class, so their routes need nothing from the include.
    """
    app.include_router(router)
    included = app.router.routes.pop()
    assert getattr(included, "original_router", None) is router, "include_router changed shape"
    app.router.routes.extend(router.routes)


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

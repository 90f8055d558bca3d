"""The market as the server runs it: the market service plus its scheduler, for one lifespan.

`open_market(settings)` is what `bootstrap.build_app` hands to the app: entering it migrates
the store, replays the command log, starts the sequencer, re-creates in the core any registered
account a crash left out (`accounts.repair_missing_accounts`) and starts the scheduler; leaving it
stops the scheduler first (so it submits nothing more), then drains and stops the sequencer.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gridmarket.service.accounts import repair_missing_accounts
from gridmarket.service.market import MarketService
from gridmarket.service.scheduler import Scheduler
from gridmarket.service.sequencer import system_clock_ms
from gridmarket.settings import Settings


@contextlib.asynccontextmanager
async def open_market(settings: Settings) -> AsyncIterator[MarketService]:
    async with MarketService.from_url(settings.database_url) as market:
        await repair_missing_accounts(market)
        scheduler = Scheduler(market.sequencer, system_clock_ms)
        task = asyncio.create_task(scheduler.run(), name="gridmarket-scheduler")
        try:
            yield market
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

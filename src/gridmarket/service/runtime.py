"""The market as the server runs it: the market service plus its scheduler, for one lifespan.

`open_market(settings)` is what `bootstrap.build_app` hands to the app: entering it migrates
the store, replays the command log, starts the sequencer, re-creates in the core any registered
account a crash left out (`accounts.repair_missing_accounts`), ends the calls a crash left in
flight (`settle_orphaned_calls`) and starts the scheduler; leaving it stops the scheduler first
(so it submits nothing more), then drains and stops the sequencer.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gridmarket.core.commands import SettleCall
from gridmarket.core.events import CallSettled
from gridmarket.service.accounts import repair_missing_accounts
from gridmarket.service.market import MarketService
from gridmarket.service.scheduler import Scheduler
from gridmarket.service.sequencer import system_clock_ms
from gridmarket.settings import Settings


@contextlib.asynccontextmanager
async def open_market(settings: Settings) -> AsyncIterator[MarketService]:
    async with MarketService.from_url(settings.database_url) as market:
        await repair_missing_accounts(market)
        await settle_orphaned_calls(market)
        scheduler = Scheduler(market.sequencer, system_clock_ms)
        task = asyncio.create_task(scheduler.run(), name="gridmarket-scheduler")
        try:
            yield market
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def settle_orphaned_calls(market: MarketService) -> int:
    """Settle, as failed and unbilled, every call still holding tokens when the market starts.

    Only this process's gateway makes calls, and a new process has none in flight: a call in
    the replayed state was cut off by a crash or a kill before it settled. Its tokens would
    stay committed for good; releasing them unbilled follows the rule that a failed delivery
    costs nothing, and leaves a receipt with status `failed`. Returns how many were settled.
    """
    call_ids = sorted(market.sequencer.exchange.state.calls)
    settled = 0
    for call_id in call_ids:
        outcome = await market.submit(
            SettleCall(call_id, 0, request_id=f"orphan:{call_id}"[:256], status="failed")
        )
        settled += any(type(event) is CallSettled for event in outcome.events)
    return settled

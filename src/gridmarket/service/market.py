"""The running market: a store and the sequencer over it, as one async context manager.

    async with MarketService.from_url("sqlite:////var/lib/gridmarket/market.db") as market:
        outcome = await market.submit(CreateAccount(AccountId("alice")))

Entering migrates the store and rebuilds the state from its log; leaving stops the sequencer
(every queued command is committed and acknowledged first) and closes the store. The server's
lifespan holds one of these; tests build it with their own clock or limits.

Garbage collection (`tune_gc`, on by default): the live market is millions of long-lived
objects, and CPython's default thresholds make the collector walk them again and again (full
collections of 100 ms and more under load, halving the order rate). While the service runs,
the replayed state is frozen out of the collector's sight (`gc.freeze`) and young collections
run every `GC_GEN0_THRESHOLD` allocations instead of 700; leaving restores both.
"""

import asyncio
import gc
from collections.abc import Awaitable, Callable
from types import TracebackType

from gridmarket.adapters.store import Store
from gridmarket.core.commands import Command
from gridmarket.core.exchange import Exchange, ExchangeConfig, Outcome
from gridmarket.service.feed import Subscription
from gridmarket.service.sequencer import (
    DEFAULT_LIMITS,
    Clock,
    Sequencer,
    SequencerLimits,
    system_clock_ms,
)

#: Net allocations between young-generation collections while the market runs.
GC_GEN0_THRESHOLD = 50_000


class MarketService:
    def __init__(self, store: Store, sequencer: Sequencer, *, tune_gc: bool = True) -> None:
        self.store = store
        self.sequencer = sequencer
        #: The command's outcome, once it is committed (`Sequencer.submit` itself: the hot
        #: path, with no extra coroutine in between).
        self.submit: Callable[[Command], Awaitable[Outcome]] = sequencer.submit
        #: The outcome once applied, its commit to follow (`Sequencer.submit_applied`).
        self.submit_applied: Callable[[Command], Awaitable[Outcome]] = sequencer.submit_applied
        self._tune_gc = tune_gc
        self._gc_threshold: tuple[int, int, int] | None = None

    @classmethod
    def from_url(
        cls,
        database_url: str,
        *,
        config: ExchangeConfig | None = None,
        clock: Clock = system_clock_ms,
        limits: SequencerLimits = DEFAULT_LIMITS,
        tune_gc: bool = True,
    ) -> "MarketService":
        """A market on `database_url` (`sqlite:///path` or `postgresql+psycopg://...`)."""
        exchange_config = config or ExchangeConfig()
        store = Store(database_url)
        sequencer = Sequencer(store, lambda: Exchange(exchange_config), clock, limits)
        return cls(store, sequencer, tune_gc=tune_gc)

    def subscribe(self, max_pending_outcomes: int | None = None) -> Subscription:
        return self.sequencer.subscribe(max_pending_outcomes)

    async def __aenter__(self) -> "MarketService":
        try:
            await self.sequencer.start()
        except BaseException:
            await self.sequencer.stop()
            await asyncio.to_thread(self.store.close)
            raise
        if self._tune_gc:
            self._gc_threshold = gc.get_threshold()
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_GEN0_THRESHOLD, *self._gc_threshold[1:])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.sequencer.stop()
        finally:
            await asyncio.to_thread(self.store.close)
            if self._gc_threshold is not None:
                gc.unfreeze()
                gc.set_threshold(*self._gc_threshold)
                self._gc_threshold = None

"""The base of every read model fed by committed outcomes: backfill, follow, read-your-writes.

A read model (market data, own trades, account history, usage, ...) derives what the API
reads from the events of committed commands. `FollowedModel` does the part they all share:

- `following(market)`: subscribe to the sequencer feed, read `committed_seq` with no await in
  between (so every outcome up to it is in the store and every later one reaches the
  subscription: no gap, no double), backfill from the store's event log off the event loop,
  then apply each outcome from the feed until the context exits. A model that falls behind
  the feed (`SubscriberDropped`) catches up from the store again.
- `apply_outcome(seq, ts_ms, events)`: applies one command's events once (a seq at or below
  `applied_seq` is ignored), through the subclass's `apply_events`.
- `caught_up(seq)`: waits until everything up to `seq` is applied, so a reader that was just
  acknowledged sees its own write (the API calls it with `committed_seq` before reading).

Subclasses name the event types they read in `EVENTS` (the backfill keeps only those, which
bounds its memory), implement `apply_events`, and may override `on_backfill(first_ts_ms)`.
Everything runs on the event loop except the store read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, ClassVar, Self, TypeVar

from fastapi import FastAPI

from gridmarket.adapters.store import Store
from gridmarket.service.errors import SubscriberDropped
from gridmarket.service.feed import Subscription
from gridmarket.service.market import MarketService

log = logging.getLogger(__name__)

#: How long a read waits for the model to catch up with the last acknowledged command.
CATCH_UP_TIMEOUT_S = 1.0

#: (seq, ts_ms, events of that command) as the backfill hands them over.
Outcome = tuple[int, int, list[object]]


class FollowedModel:
    #: The event types `apply_events` reads; the backfill drops every other event.
    EVENTS: ClassVar[tuple[type, ...]] = ()
    #: For logs and the follower task's name.
    LABEL: ClassVar[str] = "read model"

    def __init__(self) -> None:
        #: Every command up to this seq has been applied.
        self.applied_seq = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # -- what a subclass provides ---------------------------------------------------------------

    def apply_events(self, seq: int, ts_ms: int, events: Iterable[object]) -> None:
        raise NotImplementedError

    def on_backfill(self, first_ts_ms: int | None) -> None:
        """Called once per backfill with the timestamp of the first event read (any type)."""

    # -- feeding --------------------------------------------------------------------------------

    def apply_outcome(self, seq: int, ts_ms: int, events: Iterable[object]) -> None:
        """Apply one committed command's events (ignored if already applied)."""
        if seq <= self.applied_seq:
            return
        self.apply_events(seq, ts_ms, events)
        self._advance(seq)

    def _advance(self, seq: int) -> None:
        self.applied_seq = seq
        if self._waiters:
            ready = [w for w in self._waiters if w[0] <= seq]
            self._waiters = [w for w in self._waiters if w[0] > seq]
            for _, future in ready:
                if not future.done():
                    future.set_result(None)

    async def caught_up(self, seq: int, timeout_s: float = CATCH_UP_TIMEOUT_S) -> bool:
        """Wait until every outcome up to `seq` is applied; False on timeout."""
        if self.applied_seq >= seq:
            return True
        future = asyncio.get_running_loop().create_future()
        entry = (seq, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    # -- running against a market service -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def following(self, market: MarketService) -> AsyncIterator[Self]:
        """Backfill from the store, then follow the feed until the context exits."""
        subscription = await self._catch_up(market)
        task = asyncio.create_task(self._follow(market, subscription), name=self.LABEL)
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _catch_up(self, market: MarketService) -> Subscription:
        # Subscribe, then read committed_seq, with no await in between: every outcome after
        # `upto` reaches the subscription, every one up to it is in the store.
        subscription = market.subscribe()
        upto = market.sequencer.committed_seq
        after = self.applied_seq
        if upto > after:
            first_ts_ms, outcomes = await asyncio.to_thread(
                load_outcomes, market.store, after, upto, self.EVENTS
            )
            self.on_backfill(first_ts_ms)
            for seq, ts_ms, events in outcomes:
                self.apply_outcome(seq, ts_ms, events)
            self._advance(upto)
        return subscription

    async def _follow(self, market: MarketService, subscription: Subscription) -> None:
        while True:
            try:
                async with subscription:
                    async for outcomes in subscription.batches():
                        for outcome in outcomes:
                            self.apply_outcome(outcome.seq, outcome.ts_ms, outcome.events)
                return  # the feed closed: the market is stopping
            except SubscriberDropped:
                log.warning("%s fell behind the feed; catching up from the store", self.LABEL)
                subscription = await self._catch_up(market)
            except Exception:
                log.exception("%s stopped following the feed", self.LABEL)
                raise


def load_outcomes(
    store: Store, after_seq: int, upto_seq: int, kinds: Sequence[type]
) -> tuple[int | None, list[Outcome]]:
    """(timestamp of the first event read, the events of `kinds` of each command in
    (after_seq, upto_seq], grouped by command in seq order). Runs off the event loop."""
    wanted = frozenset(kinds)
    first_ts_ms: int | None = None
    outcomes: list[Outcome] = []
    for _, event in store.load_events(after_seq):
        seq: int = event.seq
        if seq > upto_seq:
            break  # committed after the subscription began: the feed carries it
        if first_ts_ms is None:
            first_ts_ms = event.ts_ms
        if wanted and type(event) not in wanted:
            continue
        if outcomes and outcomes[-1][0] == seq:
            outcomes[-1][2].append(event)
        else:
            outcomes.append((seq, event.ts_ms, [event]))
    return first_ts_ms, outcomes


def model_lifespan(
    state_name: str, build: Callable[[MarketService], FollowedModel]
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """A router lifespan that runs the model `build(market)` as `app.state.<state_name>`
    while the app runs (None when there is no market service). It runs inside the app's own
    lifespan, after `app.state.market` is set, and stops first."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        market = app.state.market
        if not isinstance(market, MarketService):
            setattr(app.state, state_name, None)
            yield
            return
        async with build(market).following(market) as model:
            setattr(app.state, state_name, model)
            try:
                yield
            finally:
                setattr(app.state, state_name, None)

    return lifespan


M = TypeVar("M", bound=FollowedModel)


async def caught_up_model(app_state: Any, state_name: str, model_type: type[M]) -> M | None:
    """The model at `app_state.<state_name>` once it holds every acknowledged command, or None
    when the market service (or the model) is not running."""
    market = getattr(app_state, "market", None)
    model = getattr(app_state, state_name, None)
    if not isinstance(market, MarketService) or not isinstance(model, model_type):
        return None
    await model.caught_up(market.sequencer.committed_seq)
    return model

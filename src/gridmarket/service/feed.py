"""Fan-out of committed outcomes to subscribers, each behind its own bounded queue.

The sequencer calls `Fanout.publish(outcomes)` once per committed batch, in seq order; it never
waits. A subscriber whose queue would overflow is dropped: it still reads what was queued, then
gets `SubscriberDropped` (it has missed outcomes and must resubscribe and catch up from the
store). A closed feed ends every subscription (`StopAsyncIteration` after the queued items).

    async with sequencer.subscribe() as subscription:
        async for outcome in subscription:
            ...

A subscriber that keeps up with every order (a read model) takes them a batch at a time,
`async for outcomes in subscription.batches()`: one wake-up per committed batch instead of
one step of the iterator per outcome.
"""

import asyncio
from collections import deque
from collections.abc import Sequence
from types import TracebackType

from gridmarket.core.exchange import Outcome
from gridmarket.service.errors import Overloaded, SubscriberDropped


class Subscription:
    """One subscriber's view of the feed: an async iterator of outcomes, in seq order."""

    def __init__(self, fanout: "Fanout", max_pending_outcomes: int) -> None:
        assert max_pending_outcomes > 0
        self._fanout = fanout
        self._max_pending_outcomes = max_pending_outcomes
        self._pending: deque[Outcome] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = False
        self.closed = False

    def _offer(self, outcomes: Sequence[Outcome]) -> bool:
        """Queue `outcomes`; False (and the subscription dropped) if they do not fit."""
        if len(self._pending) + len(outcomes) > self._max_pending_outcomes:
            self.dropped = True
            self._wake()
            return False
        self._pending.extend(outcomes)
        self._wake()
        return True

    def _end(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Outcome:
        if not self._pending:
            await self._wait()
        return self._pending.popleft()

    async def _wait(self) -> None:
        """Until an outcome is queued; `SubscriberDropped` or `StopAsyncIteration` instead."""
        while not self._pending:
            if self.dropped:
                raise SubscriberDropped("subscriber fell behind and was dropped")
            if self.closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def batches(self) -> "Batches":
        """The same outcomes, as lists of everything queued at each wake-up."""
        return Batches(self)

    async def next_batch(self) -> list[Outcome]:
        """Every outcome queued now (at least one, waiting for it), in seq order."""
        if not self._pending:
            await self._wait()
        batch = list(self._pending)
        self._pending.clear()
        return batch

    def close(self) -> None:
        """Stop receiving outcomes (what is queued can still be read)."""
        self._fanout.unsubscribe(self)
        self._end()

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Batches:
    """`Subscription.batches()`: an async iterator of non-empty lists of outcomes."""

    __slots__ = ("_subscription",)

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription

    def __aiter__(self) -> "Batches":
        return self

    async def __anext__(self) -> list[Outcome]:
        return await self._subscription.next_batch()


class Fanout:
    """The set of live subscriptions (bounded in number)."""

    def __init__(self, max_subscribers: int) -> None:
        self._max_subscribers = max_subscribers
        self._subscriptions: list[Subscription] = []
        self._closed = False

    def subscribe(self, max_pending_outcomes: int) -> Subscription:
        if len(self._subscriptions) >= self._max_subscribers:
            raise Overloaded(f"at most {self._max_subscribers} subscribers")
        subscription = Subscription(self, max_pending_outcomes)
        if self._closed:
            subscription._end()
        else:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def publish(self, outcomes: Sequence[Outcome]) -> None:
        if not self._subscriptions or not outcomes:
            return
        self._subscriptions = [s for s in self._subscriptions if s._offer(outcomes)]

    def close(self) -> None:
        """End every subscription; later subscriptions end at once."""
        self._closed = True
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription._end()

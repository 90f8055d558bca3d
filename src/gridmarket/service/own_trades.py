"""The per-account read model of one's own fills, behind GET /v1/trades.

Every committed `Trade` event is two fills: the buyer's and the seller's (self-trade
prevention means they are never the same account). A fill carries the account's side, its
order, its fee and whether it was the maker or the taker.

Fed only by committed outcomes, exactly as `service.market_data` is (see its docstring): on
start it subscribes to the sequencer's feed first, notes `committed_seq` with no await in
between, backfills every trade up to it from the store (`Store.load_events`, in a thread),
then follows the feed, skipping outcomes at or below the last applied seq; a subscriber the
feed drops catches up from the store the same way. So it is the same after a restart as
before it, with no gap or double. Reads wait for `caught_up(committed_seq)` first
(read-your-writes).

Bounds: the newest `max_fills_per_account` fills of each account are kept (100,000 by default;
when an account goes over, its oldest tenth is dropped; older fills stay in the store's event
log). One request returns at most a page (api.listing: 100). Everything is read and written on
the event loop only, so a request sees whole outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import NamedTuple

from gridmarket.adapters.store import Store
from gridmarket.core.events import Trade
from gridmarket.service.errors import SubscriberDropped
from gridmarket.service.feed import Subscription
from gridmarket.service.market import MarketService

log = logging.getLogger(__name__)

DEFAULT_MAX_FILLS_PER_ACCOUNT = 100_000
CATCH_UP_TIMEOUT_S = 1.0


class Fill(NamedTuple):
    """One account's side of one trade."""

    trade_id: int
    ts_ms: int
    account_id: str
    instrument_id: str
    order_id: int
    side: str
    price_usd_micros: int
    quantity_units: int
    fee_usd_micros: int
    #: "maker" (the resting order) or "taker".
    liquidity: str


class _AccountFills:
    __slots__ = ("by_id", "ids")

    def __init__(self) -> None:
        #: Trade ids, ascending (trades are numbered in commit order).
        self.ids: list[int] = []
        self.by_id: dict[int, Fill] = {}


def fills_of(trade: Trade) -> tuple[Fill, Fill]:
    """(the buyer's fill, the seller's fill) of a trade."""
    buyer_takes = trade.taker_side == "buy"
    buy_order = trade.taker_order_id if buyer_takes else trade.maker_order_id
    sell_order = trade.maker_order_id if buyer_takes else trade.taker_order_id
    common = (trade.instrument_id,)
    return (
        Fill(
            trade.trade_id,
            trade.ts_ms,
            trade.buyer_account_id,
            *common,
            buy_order,
            "buy",
            trade.price_usd_micros,
            trade.quantity_units,
            trade.buyer_fee_usd_micros,
            "taker" if buyer_takes else "maker",
        ),
        Fill(
            trade.trade_id,
            trade.ts_ms,
            trade.seller_account_id,
            *common,
            sell_order,
            "sell",
            trade.price_usd_micros,
            trade.quantity_units,
            trade.seller_fee_usd_micros,
            "maker" if buyer_takes else "taker",
        ),
    )


class OwnTrades:
    """Each account's own fills, from committed outcomes (see the module docstring)."""

    def __init__(self, *, max_fills_per_account: int = DEFAULT_MAX_FILLS_PER_ACCOUNT) -> None:
        assert max_fills_per_account >= 10
        self._max = max_fills_per_account
        self._accounts: dict[str, _AccountFills] = {}
        #: Every trade of every command up to this seq has been applied.
        self.applied_seq = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # -- feeding ------------------------------------------------------------------------------

    def apply_trade(self, trade: Trade) -> None:
        for fill in fills_of(trade):
            fills = self._accounts.get(fill.account_id)
            if fills is None:
                fills = self._accounts[fill.account_id] = _AccountFills()
            if fill.trade_id in fills.by_id:
                continue  # already applied (never expected: outcomes are applied once)
            fills.ids.append(fill.trade_id)
            fills.by_id[fill.trade_id] = fill
            if len(fills.ids) > self._max:
                dropped = len(fills.ids) - self._max + self._max // 10
                for trade_id in fills.ids[:dropped]:
                    del fills.by_id[trade_id]
                del fills.ids[:dropped]

    def apply_outcome(self, seq: int, events: Iterable[object]) -> None:
        """Apply one committed command's events (ignored if already applied)."""
        if seq <= self.applied_seq:
            return
        for event in events:
            if type(event) is Trade:
                self.apply_trade(event)
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

    # -- reading ------------------------------------------------------------------------------

    def trade_ids(self, account_id: str) -> list[int]:
        """The account's retained trade ids, ascending (do not modify)."""
        fills = self._accounts.get(account_id)
        return [] if fills is None else fills.ids

    def fill(self, account_id: str, trade_id: int) -> Fill | None:
        fills = self._accounts.get(account_id)
        return None if fills is None else fills.by_id.get(trade_id)

    # -- running against a market service -----------------------------------------------------

    @contextlib.asynccontextmanager
    async def following(self, market: MarketService) -> AsyncIterator[OwnTrades]:
        """Backfill from the store, then follow the feed until the context exits."""
        subscription = await self._catch_up(market)
        task = asyncio.create_task(self._follow(market, subscription), name="own-trades")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _catch_up(self, market: MarketService) -> Subscription:
        # Subscribe, then read committed_seq, with no await between (see market_data).
        subscription = market.subscribe()
        upto = market.sequencer.committed_seq
        if upto > self.applied_seq:
            trades = await asyncio.to_thread(_load_trades, market.store, self.applied_seq, upto)
            for trade in trades:
                self.apply_trade(trade)
            self._advance(upto)
        return subscription

    async def _follow(self, market: MarketService, subscription: Subscription) -> None:
        while True:
            try:
                async with subscription:
                    async for outcome in subscription:
                        self.apply_outcome(outcome.seq, outcome.events)
                return  # the feed closed: the market is stopping
            except SubscriberDropped:
                log.warning("own trades fell behind the feed; catching up from the store")
                subscription = await self._catch_up(market)
            except Exception:
                log.exception("own trades stopped following the feed")
                raise


def _load_trades(store: Store, after_seq: int, upto_seq: int) -> list[Trade]:
    """The trades of commands in (after_seq, upto_seq]."""
    trades: list[Trade] = []
    for _, event in store.load_events(after_seq):
        if event.seq > upto_seq:
            break  # committed after the subscription began: the feed carries it
        if type(event) is Trade:
            trades.append(event)
    return trades

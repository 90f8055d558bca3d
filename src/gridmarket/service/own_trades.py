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

import logging
from collections.abc import Iterable
from typing import NamedTuple

from gridmarket.core.events import Trade
from gridmarket.service.followed import FollowedModel

log = logging.getLogger(__name__)

DEFAULT_MAX_FILLS_PER_ACCOUNT = 100_000


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


class OwnTrades(FollowedModel):
    """Each account's own fills, from committed outcomes (see the module docstring)."""

    EVENTS = (Trade,)
    LABEL = "own trades"

    def __init__(self, *, max_fills_per_account: int = DEFAULT_MAX_FILLS_PER_ACCOUNT) -> None:
        assert max_fills_per_account >= 10
        super().__init__()
        self._max = max_fills_per_account
        self._accounts: dict[str, _AccountFills] = {}

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

    def apply_events(self, seq: int, ts_ms: int, events: Iterable[object]) -> None:
        for event in events:
            if type(event) is Trade:
                self.apply_trade(event)

    # -- reading ------------------------------------------------------------------------------

    def trade_ids(self, account_id: str) -> list[int]:
        """The account's retained trade ids, ascending (do not modify)."""
        fills = self._accounts.get(account_id)
        return [] if fills is None else fills.ids

    def fill(self, account_id: str, trade_id: int) -> Fill | None:
        fills = self._accounts.get(account_id)
        return None if fills is None else fills.by_id.get(trade_id)

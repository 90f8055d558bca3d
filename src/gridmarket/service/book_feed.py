"""The live-feed read model: a full-depth L2 book per market and the open orders, from outcomes.

    model = FeedModel.from_state(exchange.state)      # at start: the live state, seq S
    update = model.apply(outcome)                     # every committed outcome after S, in order
    update.levels[market]  -> [LevelChange(side, price, quantity, sequence), ...]

Why a model of its own: a client keeping a local book in sync needs a snapshot and the diffs
that follow it from ONE sequence. The live core book runs ahead of what is committed (the batch
being written), so it cannot label a snapshot with the diffs that will follow; this model is
fed only by committed outcomes (the sequencer feed), and both the snapshot (`snapshot`) and the
diffs (`apply`) come from it.

Per market, `sequence` counts level changes: every change carries the next number, so a
client that sees a number other than last + 1 knows it missed one and must resync (take a new
snapshot). Several changes of one outcome are reported together, each with its own number.
A level whose open quantity drops to zero is reported with quantity 0 and leaves the book.

How events move the book (core/matching.py):
- `OrderAccepted`: the order is tracked; if it is a gtc limit still open at the end of its
  outcome (after its own fills, closure or cancellation in that same outcome), its remainder
  rests at its price. Market, ioc and fok orders never rest.
- `Trade`: the maker's level (the side opposite `taker_side`, at the trade price) loses the
  traded quantity; both orders' fills are counted (for `user.orders`).
- `OrderCancelled`: a resting order's remainder leaves its level (self-trade prevention,
  requests, sweeps). `OrderClosed`: a remainder that never rested; nothing on the book moves.
- A replace, if the core ever emits one, is a cancel followed by an accept: handled as both.

Only the levels touched by an outcome are compared before and after it, so the cost of an
outcome is proportional to its events. Orders are kept while open and dropped once terminal:
the model holds no more orders than the core's open-order limits allow.

Everything runs on the event loop; nothing here awaits.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from gridmarket.core.events import OrderAccepted, OrderCancelled, OrderClosed, Trade
from gridmarket.core.exchange import Outcome
from gridmarket.core.ids import AccountId, InstrumentId, OrderId
from gridmarket.core.orders import CANCELLED, CLOSED, FILLED, OPEN_STATUSES, PARTIALLY_FILLED
from gridmarket.core.state import MarketState

log = logging.getLogger(__name__)

BID = "bid"
ASK = "ask"


class LevelChange(NamedTuple):
    """A price level's new open quantity (0: the level is gone), as change number `sequence`."""

    side: str
    price_usd_micros: int
    quantity_units: int
    sequence: int


class OrderView(NamedTuple):
    """One order as it stood at a moment (frozen: safe to hand to many connections)."""

    order_id: OrderId
    account_id: AccountId
    instrument_id: InstrumentId
    side: str
    order_type: str
    status: str
    price_usd_micros: int | None
    quantity_units: int
    remaining_units: int
    filled_units: int
    filled_notional_usd_micros: int
    fee_paid_usd_micros: int
    time_in_force: str
    post_only: bool
    client_order_id: str | None
    closure_reason: str | None
    created_ms: int
    updated_ms: int


class OrderChange(NamedTuple):
    """`new_order` (as accepted) or `order_update` (as it stands after the outcome)."""

    kind: str
    order: OrderView


@dataclass
class FeedUpdate:
    """What one outcome changed, for the connections to hear about."""

    seq: int
    ts_ms: int
    levels: dict[InstrumentId, list[LevelChange]] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    orders: list[OrderChange] = field(default_factory=list)
    #: Markets whose ticker (last price, best bid or ask, volume) may have changed.
    tickers: set[InstrumentId] = field(default_factory=set)


class _Order:
    """A tracked open order (mutable; `view()` freezes it)."""

    __slots__ = (
        "account_id",
        "client_order_id",
        "closure_reason",
        "created_ms",
        "fee_paid_usd_micros",
        "filled_notional_usd_micros",
        "filled_units",
        "instrument_id",
        "order_id",
        "order_type",
        "post_only",
        "price_usd_micros",
        "quantity_units",
        "remaining_units",
        "resting",
        "side",
        "status",
        "time_in_force",
        "updated_ms",
    )

    def __init__(self, accepted: OrderAccepted) -> None:
        self.order_id = accepted.order_id
        self.account_id = accepted.account_id
        self.instrument_id = accepted.instrument_id
        self.side = accepted.side
        self.order_type = accepted.order_type
        self.price_usd_micros = accepted.price_usd_micros
        self.quantity_units = accepted.quantity_units
        self.remaining_units = accepted.quantity_units
        self.filled_units = 0
        self.filled_notional_usd_micros = 0
        self.fee_paid_usd_micros = 0
        self.time_in_force = accepted.time_in_force
        self.post_only = accepted.post_only
        self.client_order_id = accepted.client_order_id
        self.closure_reason: str | None = None
        self.created_ms = self.updated_ms = accepted.ts_ms
        self.status = "active"
        self.resting = False

    @property
    def rests(self) -> bool:
        return self.order_type == "limit" and self.time_in_force == "gtc"

    def view(self) -> OrderView:
        return OrderView(
            self.order_id,
            self.account_id,
            self.instrument_id,
            self.side,
            self.order_type,
            self.status,
            self.price_usd_micros,
            self.quantity_units,
            self.remaining_units,
            self.filled_units,
            self.filled_notional_usd_micros,
            self.fee_paid_usd_micros,
            self.time_in_force,
            self.post_only,
            self.client_order_id,
            self.closure_reason,
            self.created_ms,
            self.updated_ms,
        )


class L2Side:
    """Price -> open units, with the prices kept sorted (best is last for bids, first for asks)."""

    __slots__ = ("is_bid", "prices", "quantities")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.quantities: dict[int, int] = {}
        self.prices: list[int] = []

    def get(self, price: int) -> int:
        return self.quantities.get(price, 0)

    def add(self, price: int, units: int) -> None:
        now = self.quantities.get(price, 0) + units
        if now < 0:
            raise AssertionError(f"level {price} would go negative ({now})")
        if now == 0:
            del self.quantities[price]
            del self.prices[bisect_left(self.prices, price)]
        else:
            if price not in self.quantities:
                insort(self.prices, price)
            self.quantities[price] = now

    def best(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def levels(self) -> Iterator[tuple[int, int]]:
        """(price, open units) from the best price outwards."""
        ordered = reversed(self.prices) if self.is_bid else iter(self.prices)
        for price in ordered:
            yield price, self.quantities[price]


class L2Book:
    __slots__ = ("asks", "bids", "last_price_usd_micros", "sequence")

    def __init__(self) -> None:
        self.bids = L2Side(True)
        self.asks = L2Side(False)
        #: The number of the last level change (0: none yet since the model was built).
        self.sequence = 0
        self.last_price_usd_micros: int | None = None

    def side(self, name: str) -> L2Side:
        return self.bids if name == BID else self.asks

    def top(self) -> tuple[int | None, int | None, int | None]:
        return self.last_price_usd_micros, self.bids.best(), self.asks.best()


_Move = Callable[[_Order, int], None]
"""Add units (negative: remove) to an order's price level, noting the level's old quantity."""


class BookSnapshot(NamedTuple):
    instrument_id: InstrumentId
    #: The last level change included; the next diff carries sequence + 1.
    sequence: int
    #: The last command applied to the model.
    seq: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


def _side_of(order_side: str) -> str:
    return BID if order_side == "buy" else ASK


class FeedModel:
    """L2 books and open orders of every market, as of command `seq` (see module docstring)."""

    def __init__(self, instrument_ids: Iterable[InstrumentId], seq: int = 0) -> None:
        self.books: dict[InstrumentId, L2Book] = {i: L2Book() for i in instrument_ids}
        self.orders: dict[OrderId, _Order] = {}
        #: Every outcome up to this seq is applied; later ones are skipped if seen again.
        self.seq = seq
        #: Whose order changes to report (building them costs; the hub asks only for accounts
        #: someone listens to). Every account's by default.
        self.wants_orders: Callable[[AccountId], bool] = _everyone

    @classmethod
    def from_state(cls, state: MarketState) -> FeedModel:
        """The model of the live core state at `state.seq` (call with no await around it)."""
        model = cls(state.books, state.seq)
        for instrument_id, book in state.books.items():
            l2 = model.books[instrument_id]
            l2.last_price_usd_micros = book.last_price_usd_micros
            for core_side in (book.bids, book.asks):
                for order in core_side.open_orders():
                    tracked = _Order.__new__(_Order)
                    for name in _Order.__slots__:
                        if name != "resting":
                            setattr(tracked, name, getattr(order, name))
                    tracked.resting = True
                    model.orders[tracked.order_id] = tracked
                    assert order.price_usd_micros is not None
                    l2.side(_side_of(order.side)).add(order.price_usd_micros, order.remaining_units)
        return model

    def snapshot(self, instrument_id: InstrumentId) -> BookSnapshot:
        book = self.books[instrument_id]
        return BookSnapshot(
            instrument_id,
            book.sequence,
            self.seq,
            list(book.bids.levels()),
            list(book.asks.levels()),
        )

    # -- applying outcomes ----------------------------------------------------------------------

    def apply(self, outcome: Outcome) -> FeedUpdate | None:
        """Apply one committed outcome; what changed, or None if it was already applied."""
        if outcome.seq <= self.seq:
            return None
        update = FeedUpdate(outcome.seq, outcome.ts_ms)
        #: (market, side, price) -> open units before this outcome, in first-touch order.
        before: dict[tuple[InstrumentId, str, int], int] = {}
        tops: dict[InstrumentId, tuple[int | None, int | None, int | None]] = {}
        touched: dict[OrderId, _Order] = {}
        accepted: list[_Order] = []
        wants = self.wants_orders

        def move(order: _Order, units: int) -> None:
            book = self.books.get(order.instrument_id)
            price = order.price_usd_micros
            if book is None or price is None:
                return
            if order.instrument_id not in tops:
                tops[order.instrument_id] = book.top()
            side = _side_of(order.side)
            key = (order.instrument_id, side, price)
            l2_side = book.side(side)
            if key not in before:
                before[key] = l2_side.get(price)
            l2_side.add(price, units)

        for event in outcome.events:
            kind = type(event)
            if kind is OrderAccepted:
                assert isinstance(event, OrderAccepted)
                order = _Order(event)
                self.orders[order.order_id] = order
                accepted.append(order)
                touched[order.order_id] = order
                if wants(order.account_id):
                    update.orders.append(OrderChange("new_order", order.view()))
            elif kind is Trade:
                assert isinstance(event, Trade)
                self._trade(event, update, touched, move)
            elif kind is OrderCancelled or kind is OrderClosed:
                assert isinstance(event, OrderCancelled | OrderClosed)
                self._end(event, touched, move)

        # What is still open of this outcome's gtc limits rests now, after its own fills.
        for order in accepted:
            if order.rests and order.status in OPEN_STATUSES and order.remaining_units:
                move(order, order.remaining_units)
                order.resting = True

        self._level_changes(update, before)
        for instrument_id, top in tops.items():
            if self.books[instrument_id].top() != top:
                update.tickers.add(instrument_id)
        for order in touched.values():
            if order.status not in OPEN_STATUSES:
                del self.orders[order.order_id]
        new_ids = {o.order_id for o in accepted}
        # An accepted order that changed within its own outcome gets an update right after.
        update.orders.extend(
            OrderChange("order_update", o.view())
            for o in touched.values()
            if wants(o.account_id)
            and (o.order_id not in new_ids or o.filled_units or o.status != "active")
        )
        self.seq = outcome.seq
        return update

    def _end(
        self, event: OrderCancelled | OrderClosed, touched: dict[OrderId, _Order], move: _Move
    ) -> None:
        """A cancellation or closure: a resting remainder leaves its level."""
        order = self.orders.get(event.order_id)
        if order is None:
            log.warning("feed model: %s of an untracked order", type(event).__name__)
            return
        if order.resting:
            move(order, -order.remaining_units)
            order.resting = False
        if isinstance(event, OrderCancelled):
            order.status, order.closure_reason = CANCELLED, event.reason
        else:
            order.status, order.closure_reason = CLOSED, event.closure_reason
        order.updated_ms = event.ts_ms
        touched[order.order_id] = order

    def _trade(
        self, trade: Trade, update: FeedUpdate, touched: dict[OrderId, _Order], move: _Move
    ) -> None:
        update.trades.append(trade)
        update.tickers.add(trade.instrument_id)
        book = self.books.get(trade.instrument_id)
        if book is not None:
            book.last_price_usd_micros = trade.price_usd_micros
        notional = trade.price_usd_micros * trade.quantity_units
        for order_id in (trade.maker_order_id, trade.taker_order_id):
            order = self.orders.get(order_id)
            if order is None:
                log.warning("feed model: a trade of an untracked order %s", order_id)
                continue
            if order.resting:  # the maker: its level loses what traded
                move(order, -trade.quantity_units)
            order.remaining_units -= trade.quantity_units
            order.filled_units += trade.quantity_units
            order.filled_notional_usd_micros += notional
            is_buy = order.side == "buy"
            order.fee_paid_usd_micros += (
                trade.buyer_fee_usd_micros if is_buy else trade.seller_fee_usd_micros
            )
            order.status = PARTIALLY_FILLED if order.remaining_units else FILLED
            order.updated_ms = trade.ts_ms
            if not order.remaining_units:
                order.resting = False
            touched[order.order_id] = order

    def _level_changes(
        self, update: FeedUpdate, before: dict[tuple[InstrumentId, str, int], int]
    ) -> None:
        for (instrument_id, side, price), old in before.items():
            book = self.books[instrument_id]
            new = book.side(side).get(price)
            if new == old:
                continue
            book.sequence += 1
            change = LevelChange(side, price, new, book.sequence)
            update.levels.setdefault(instrument_id, []).append(change)


def _everyone(account_id: AccountId) -> bool:
    return True

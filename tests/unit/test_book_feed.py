"""The feed's L2 read model against the live core book, under random orders and cancels.

After every outcome the model's levels must equal the core's (`Side.depth`), its change numbers
must run without a gap, and a client applying a snapshot plus the changes must hold the same
book. A model rebuilt from the live state mid-run must equal the one that followed the outcomes.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from gridmarket.core import commands
from gridmarket.core.commands import CancelAllOrders, CancelOrder, Command, PlaceOrder
from gridmarket.core.ids import AccountId, InstrumentId, OrderId
from gridmarket.service.book_feed import ASK, BID, FeedModel, OrderChange

from .helpers import TP, TS, USD, Market

TICK = 1_000  # 0.001 USD
#: Cancel-replace (a cancel and an accept in one outcome), where the core has it.
REPLACE_ORDER: Any = getattr(commands, "ReplaceOrder", None)
Levels = tuple[list[tuple[int, int]], ...]


def _core_levels(market: Market, instrument_id: InstrumentId) -> Levels:
    book = market.state.books[instrument_id]
    return list(book.bids.depth()), list(book.asks.depth())


def _model_levels(
    model: FeedModel, instrument_id: InstrumentId
) -> tuple[list[tuple[int, int]], ...]:
    book = model.books[instrument_id]
    return list(book.bids.levels()), list(book.asks.levels())


def _random_command(rng: random.Random, market: Market, traders: list[AccountId]) -> Command:
    trader = rng.choice(traders)
    roll = rng.random()
    instrument_id = rng.choice((TP, TP, TS))
    open_ids = [o for o in market.state.accounts[trader].open_order_ids]
    if roll < 0.2 and open_ids:
        return CancelOrder(trader, OrderId(rng.choice(open_ids)))
    if roll < 0.23:
        return CancelAllOrders(trader, rng.choice((None, instrument_id)))
    if roll < 0.3 and open_ids and REPLACE_ORDER is not None:
        price = rng.choice((None, rng.randint(900, 1_100) * TICK))
        return REPLACE_ORDER(trader, OrderId(rng.choice(open_ids)), price, rng.randint(1, 6))
    side = rng.choice(("buy", "sell"))
    quantity = rng.randint(1, 6)
    if roll < 0.33:
        return PlaceOrder(trader, instrument_id, side, "market", quantity)
    price = rng.randint(900, 1_100) * TICK
    tif = rng.choice(("gtc", "gtc", "gtc", "gtc", "ioc", "fok"))
    post_only = tif == "gtc" and rng.random() < 0.1
    return PlaceOrder(trader, instrument_id, side, "limit", quantity, price, tif, post_only)


@pytest.mark.parametrize("seed", range(6))
def test_the_l2_model_equals_the_core_book_after_every_outcome(seed: int) -> None:
    rng = random.Random(seed)
    market = Market()
    traders = []
    for n in range(4):
        trader = market.supplier(f"s{n}", 10_000, usd_micros=100_000 * USD)
        market.supplier(f"s{n}", 10_000, TS)
        traders.append(trader)
    model = FeedModel.from_state(market.state)
    client = {i: model.snapshot(i) for i in (TP, TS)}
    local = {i: ({p: q for p, q in s.bids}, {p: q for p, q in s.asks}) for i, s in client.items()}
    last_sequence = {i: s.sequence for i, s in client.items()}
    traded = changed = 0
    for step in range(600):
        outcome = market.apply(_random_command(rng, market, traders))
        update = model.apply(outcome)
        assert update is not None
        assert model.apply(outcome) is None  # a repeat is skipped
        traded += len(update.trades)
        for instrument_id, changes in update.levels.items():
            for change in changes:
                changed += 1
                assert change.sequence == last_sequence[instrument_id] + 1
                last_sequence[instrument_id] = change.sequence
                side = local[instrument_id][0 if change.side == BID else 1]
                assert change.side in (BID, ASK)
                if change.quantity_units:
                    side[change.price_usd_micros] = change.quantity_units
                else:
                    del side[change.price_usd_micros]
        for instrument_id in (TP, TS):
            core = _core_levels(market, instrument_id)
            assert _model_levels(model, instrument_id) == core, (seed, step)
            bids, asks = local[instrument_id]
            assert sorted(bids.items(), reverse=True) == core[0]
            assert sorted(asks.items()) == core[1]
        if step % 150 == 149:
            rebuilt = FeedModel.from_state(market.state)
            for instrument_id in (TP, TS):
                assert _model_levels(rebuilt, instrument_id) == _model_levels(model, instrument_id)
            assert set(rebuilt.orders) == set(model.orders)
            for order_id, order in model.orders.items():
                assert rebuilt.orders[order_id].view() == order.view()
    assert traded > 50 and changed > 200  # the run exercised matching, not just resting


def test_order_changes_follow_the_core_order() -> None:
    market = Market()
    seller = market.supplier("seller", 100, usd_micros=1_000 * USD)
    buyer = market.account("buyer", 1_000 * USD)
    model = FeedModel.from_state(market.state)
    ask = market.apply(PlaceOrder(seller, TP, "sell", "limit", 5, 1_000_000))
    update = model.apply(ask)
    assert update is not None
    assert [c.kind for c in update.orders] == ["new_order"]
    assert update.levels[TP][0][:3] == (ASK, 1_000_000, 5)
    bid = market.apply(PlaceOrder(buyer, TP, "buy", "limit", 7, 1_000_000))
    update = model.apply(bid)
    assert update is not None
    kinds = [(c.kind, c.order.account_id, c.order.status) for c in update.orders]
    assert kinds == [
        ("new_order", buyer, "active"),
        ("order_update", buyer, "partially_filled"),
        ("order_update", seller, "filled"),
    ]
    buy_view = update.orders[1].order
    core = market.state.orders[buy_view.order_id]
    assert (buy_view.remaining_units, buy_view.filled_units) == (core.remaining_units, 5)
    assert buy_view.filled_notional_usd_micros == core.filled_notional_usd_micros
    assert [c[:3] for c in update.levels[TP]] == [(ASK, 1_000_000, 0), (BID, 1_000_000, 2)]
    assert update.tickers == {TP}
    assert len(update.trades) == 1
    cancelled = model.apply(market.apply(CancelOrder(buyer, buy_view.order_id)))
    assert cancelled is not None
    assert cancelled.orders == [
        OrderChange(
            "order_update", buy_view._replace(status="cancelled", closure_reason="requested")
        )
    ]
    assert model.orders == {}

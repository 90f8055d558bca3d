"""ReplaceOrder: cancel-replace in one command. The new order gets a new id and no priority,
holds exactly what a fresh order would, may trade; a refusal changes nothing at all."""

from typing import NamedTuple

import pytest

from gridmarket.core.commands import CancelOrder, ReplaceOrder
from gridmarket.core.events import (
    OrderAccepted,
    OrderAlreadyExists,
    OrderCancelled,
    OrderReplaced,
    Rejected,
    Trade,
)
from gridmarket.core.ids import AccountId, OrderId

from .helpers import TP, Market, kinds, of_type, order_id, trades, variant

C1 = AccountId("c1")
#: text-prime with fees: maker 10 bps, taker 20 bps (a buy locks notional + 20 bps).
FEES = variant(TP, maker_fee_bps=10, taker_fee_bps=20)


def _market() -> Market:
    """c1 holds 10 USD and 5 units; x (a counterparty) the same."""
    m = Market(FEES)
    m.supplier("c1", 5, usd_micros=10_000_000)
    m.supplier("x", 5, usd_micros=10_000_000)
    return m


class Replace(NamedTuple):
    name: str
    #: c1's resting order: (side, units, price).
    order: tuple[str, int, int]
    #: The replacement: (price or None, quantity or None).
    change: tuple[int | None, int | None]
    #: The new order's (price, quantity); c1 after: (USD available, USD locked,
    #: trading available, trading locked).
    new: tuple[int, int]
    after: tuple[int, int, int, int]


REPLACES = [
    Replace(
        # 1.5 × 2 = 3.000 + 20 bps = 3.006 held instead of 4.008.
        "bid_lower_price_releases_usd",
        ("buy", 2, 2_000_000),
        (1_500_000, None),
        (1_500_000, 2),
        (6_994_000, 3_006_000, 5_000_000, 0),
    ),
    Replace(
        "bid_more_units_holds_more",
        ("buy", 2, 2_000_000),
        (None, 4),
        (2_000_000, 4),
        (1_984_000, 8_016_000, 5_000_000, 0),
    ),
    Replace(
        # Exactly everything c1 has: 4.990 × 2 = 9.980 + 0.01996 = 9.99996.
        "bid_using_all_the_usd_freed_by_the_old_hold",
        ("buy", 2, 2_000_000),
        (4_990_000, None),
        (4_990_000, 2),
        (40, 9_999_960, 5_000_000, 0),
    ),
    Replace(
        "ask_more_units_locks_them",
        ("sell", 3, 2_000_000),
        (None, 5),
        (2_000_000, 5),
        (10_000_000, 0, 0, 5_000_000),
    ),
    Replace(
        "ask_fewer_units_at_a_new_price",
        ("sell", 3, 2_000_000),
        (2_500_000, 1),
        (2_500_000, 1),
        (10_000_000, 0, 4_000_000, 1_000_000),
    ),
    Replace(
        # Same price and quantity: allowed, and still loses its place (see the priority test).
        "unchanged_values_still_replace",
        ("buy", 2, 2_000_000),
        (2_000_000, 2),
        (2_000_000, 2),
        (5_992_000, 4_008_000, 5_000_000, 0),
    ),
]


@pytest.mark.parametrize("s", REPLACES, ids=lambda s: s.name)
def test_replace_moves_the_hold_to_the_new_order(s: Replace) -> None:
    m = _market()
    side, units, price = s.order
    old = order_id(m.place("c1", side, units, price, client_order_id="mine"))
    m.advance(7)
    outcome = m.apply(ReplaceOrder(C1, old, *s.change))
    assert kinds(outcome.events) == ["OrderCancelled", "OrderReplaced", "OrderAccepted"]
    cancelled, replaced, accepted = outcome.events
    assert cancelled == OrderCancelled(outcome.seq, m.now_ms, old, C1, TP, "replaced", units)
    assert replaced == OrderReplaced(outcome.seq, m.now_ms, old, OrderId(outcome.seq), C1, TP)
    assert isinstance(accepted, OrderAccepted)
    assert accepted.order_id == outcome.seq != old
    assert (accepted.price_usd_micros, accepted.quantity_units) == s.new
    assert (accepted.side, accepted.order_type, accepted.time_in_force) == (side, "limit", "gtc")
    assert accepted.client_order_id == "mine"
    assert (*m.usd("c1"), *m.tokens("c1")[:2]) == s.after
    assert m.status(old) == "cancelled"
    assert m.state.orders[old].closure_reason == "replaced"
    assert m.status(accepted.order_id) == "active"
    assert list(m.state.accounts[C1].open_order_ids) == [accepted.order_id]


def test_the_replacement_loses_time_priority() -> None:
    m = _market()
    m.account("c2", 10_000_000)
    first = m.bid("c1", 1, 1_000_000)
    second = m.bid("c2", 1, 1_000_000)
    replaced = m.apply(ReplaceOrder(C1, first, 1_000_000, 1)).seq
    book = m.state.books[TP].bids
    assert [o.order_id for o in book.open_orders()] == [second, replaced]
    sold = m.sell("x", 1, 1_000_000)
    assert [t[2] for t in trades(sold)] == [second]  # c2, now first in line, is filled


def test_a_replacement_that_crosses_trades_as_a_taker() -> None:
    m = _market()
    ask = m.ask("x", 2, 2_000_000)
    bid = m.bid("c1", 2, 1_000_000)
    outcome = m.apply(ReplaceOrder(C1, bid, 2_000_000, None))
    assert trades(outcome) == [(2_000_000, 2, ask, 1)]
    (trade,) = of_type(outcome.events, Trade)
    # The taker pays 20 bps of 4.000, the maker 10 bps.
    assert (trade.buyer_fee_usd_micros, trade.seller_fee_usd_micros) == (8_000, 4_000)
    assert trade.taker_order_id == outcome.seq
    assert m.usd("c1") == (10_000_000 - 4_008_000, 0)
    assert m.tokens("c1")[:2] == (7_000_000, 0)
    assert m.status(outcome.seq) == "filled"
    assert m.state.accounts[C1].open_order_ids == {}


def test_a_partly_filled_order_is_replaced_by_its_new_remaining_quantity() -> None:
    m = _market()
    bid = m.bid("c1", 3, 1_000_000)
    m.sell("x", 1, 1_000_000)  # fills 1 of 3 (c1 maker fee: 0.001)
    outcome = m.apply(ReplaceOrder(C1, bid, None, 4))
    (cancelled,) = of_type(outcome.events, OrderCancelled)
    assert cancelled.remaining_units == 2
    old = m.state.orders[bid]
    assert (old.filled_units, old.remaining_units, old.status) == (1, 2, "cancelled")
    new = m.state.orders[outcome.seq]
    assert (new.quantity_units, new.remaining_units, new.filled_units) == (4, 4, 0)
    assert m.usd("c1") == (10_000_000 - 1_001_000 - 4_008_000, 4_008_000)


def test_the_client_order_id_moves_to_the_new_order() -> None:
    m = _market()
    bid = order_id(m.buy("c1", 1, 1_000_000, client_order_id="cid"))
    new = m.apply(ReplaceOrder(C1, bid, 1_100_000, None)).seq
    assert m.state.accounts[C1].client_orders == {"cid": new}
    again = m.buy("c1", 1, 1_100_000, client_order_id="cid")  # the new order's parameters
    assert of_type(again.events, OrderAlreadyExists)[0].order_id == new


class BadReplace(NamedTuple):
    name: str
    account: str
    #: "bid", "ask", "post_only", "filled", "cancelled" or "none".
    target: str
    change: tuple[object, object]
    reason: str


BAD_REPLACES = [
    BadReplace("another_accounts_order_is_unknown", "x", "bid", (1_100_000, None), "unknown_order"),
    BadReplace("order_id_never_used", "c1", "none", (1_100_000, None), "unknown_order"),
    BadReplace("cancelled_order", "c1", "cancelled", (1_100_000, None), "order_not_open"),
    BadReplace("filled_order", "c1", "filled", (1_100_000, None), "order_not_open"),
    BadReplace("nothing_to_change", "c1", "bid", (None, None), "nothing_to_replace"),
    BadReplace("price_off_tick", "c1", "bid", (1_000_500, None), "price_off_tick"),
    BadReplace("price_zero", "c1", "bid", (0, None), "invalid_price"),
    BadReplace("price_not_an_int", "c1", "bid", ("1", None), "invalid_price"),
    BadReplace("quantity_zero", "c1", "bid", (None, 0), "invalid_quantity"),
    BadReplace("quantity_too_big", "c1", "bid", (None, 10**12), "invalid_quantity"),
    BadReplace("bid_beyond_the_usd", "c1", "bid", (None, 9), "insufficient_funds"),
    BadReplace("ask_beyond_the_units", "c1", "ask", (None, 7), "insufficient_units"),
    # The last trade was at 2.000 and the band is ±50%.
    BadReplace("out_of_band", "c1", "bid", (500_000, None), "price_out_of_band"),
    BadReplace("post_only_takes", "c1", "post_only", (2_500_000, None), "post_only_would_take"),
]


@pytest.mark.parametrize("s", BAD_REPLACES, ids=lambda s: s.name)
def test_a_refused_replace_changes_nothing(s: BadReplace) -> None:
    m = _market()
    m.account("c2", 10_000_000)
    m.ask("x", 1, 2_000_000)
    filled = m.bid("c1", 1, 2_000_000)  # trades at 2.000: the band's reference
    m.ask("x", 1, 2_500_000)
    targets = {
        "bid": m.bid("c1", 1, 1_000_000),
        "ask": m.ask("c1", 2, 3_000_000),
        "post_only": m.bid("c1", 1, 1_100_000, post_only=True),
        "filled": filled,
        "cancelled": m.bid("c1", 1, 1_200_000),
        "none": OrderId(10_000),
    }
    m.apply(CancelOrder(C1, targets["cancelled"]))
    m.bid("c2", 1, 1_000_000)  # behind c1's bid at 1.000
    before = (m.balances(), [o.snapshot() for o in m.state.orders.values()])
    bids = [o.order_id for o in m.state.books[TP].bids.open_orders()]
    account = m.state.accounts[C1]
    open_ids, client_orders = dict(account.open_order_ids), dict(account.client_orders)
    price, quantity = s.change
    target = OrderId(targets[s.target])
    outcome = m.apply(ReplaceOrder(AccountId(s.account), target, price, quantity))  # type: ignore[arg-type]
    assert outcome.events == [Rejected(outcome.seq, m.now_ms, "ReplaceOrder", s.account, s.reason)]
    assert (m.balances(), [o.snapshot() for o in m.state.orders.values()]) == before
    assert [o.order_id for o in m.state.books[TP].bids.open_orders()] == bids
    assert (account.open_order_ids, account.client_orders) == (open_ids, client_orders)


def test_the_open_order_limit_counts_the_replaced_order_as_gone() -> None:
    m = Market(FEES, max_open_orders_per_account=2)
    m.supplier("c1", 5, usd_micros=10_000_000)
    first = m.bid("c1", 1, 1_000_000)
    m.bid("c1", 1, 1_100_000)
    outcome = m.apply(ReplaceOrder(C1, first, 1_200_000, None))
    assert kinds(outcome.events)[-1] == "OrderAccepted"
    assert len(m.state.accounts[C1].open_order_ids) == 2

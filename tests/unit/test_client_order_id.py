"""A repeated client_order_id returns the original order when the parameters match and is a
named conflict when they differ; ids are per account and only accepted orders reserve them."""

from typing import Any, NamedTuple

import pytest

from gridmarket.core.events import OrderAccepted, OrderAlreadyExists, OrderRejected
from gridmarket.core.ids import AccountId, OrderId

from .helpers import TP, TS, Market, kinds, of_type, order_id

#: The original order: c1 buys 2 @ 1.500 gtc on text-prime with client id "abc".
ORIGINAL: dict[str, Any] = {
    "side": "buy",
    "quantity_units": 2,
    "price_usd_micros": 1_500_000,
    "order_type": "limit",
    "time_in_force": "gtc",
    "post_only": False,
    "instrument_id": TP,
}


class Repeat(NamedTuple):
    name: str
    changes: dict[str, Any]
    #: None: the original stands (OrderAlreadyExists); else the rejection reason.
    reason: str | None


REPEATS = [
    Repeat("same_parameters", {}, None),
    Repeat("explicit_auto_transfer_equal_to_the_account_setting", {"auto_transfer": False}, None),
    Repeat("other_price", {"price_usd_micros": 1_400_000}, "client_order_id_conflict"),
    Repeat("other_quantity", {"quantity_units": 3}, "client_order_id_conflict"),
    Repeat("other_side", {"side": "sell"}, "client_order_id_conflict"),
    Repeat("other_time_in_force", {"time_in_force": "ioc"}, "client_order_id_conflict"),
    Repeat("other_post_only", {"post_only": True}, "client_order_id_conflict"),
    Repeat("other_instrument", {"instrument_id": TS}, "client_order_id_conflict"),
    Repeat("other_auto_transfer", {"auto_transfer": True}, "client_order_id_conflict"),
    Repeat(
        "other_type",
        {"order_type": "market", "price_usd_micros": None},
        "client_order_id_conflict",
    ),
]


def _place(m: Market, account: str = "c1", **changes: Any) -> Any:
    params = {**ORIGINAL, **changes}
    side = params.pop("side")
    quantity = params.pop("quantity_units")
    price = params.pop("price_usd_micros")
    return m.place(account, side, quantity, price, client_order_id="abc", **params)


@pytest.mark.parametrize("s", REPEATS, ids=lambda s: s.name)
def test_repeated_client_order_id(s: Repeat) -> None:
    m = Market()
    m.supplier("c1", 5, usd_micros=10_000_000)
    m.supplier("c1", 5, TS)
    original = order_id(_place(m))
    balances = dict(m.state.ledger.balances)
    orders = len(m.state.orders)
    m.advance(10)
    outcome = _place(m, **s.changes)
    if s.reason is None:
        assert outcome.events == [
            OrderAlreadyExists(outcome.seq, m.now_ms, original, AccountId("c1"), "abc")
        ]
    else:
        assert kinds(outcome.events) == ["OrderRejected"]
        assert outcome.events[0].reason == s.reason
    assert len(m.state.orders) == orders
    assert m.state.ledger.balances == balances
    assert m.state.accounts["c1"].client_orders == {"abc": original}
    assert m.status(original) == "active"


@pytest.mark.parametrize("end", ["filled", "cancelled"], ids=["after_fill", "after_cancel"])
def test_same_parameters_return_the_original_even_when_it_is_done(end: str) -> None:
    from gridmarket.core.commands import CancelOrder

    m = Market()
    m.supplier("s1", 2)
    m.account("c1", 10_000_000)
    original = order_id(_place(m))
    if end == "filled":
        m.sell("s1", 2, 1_500_000)
    else:
        m.apply(CancelOrder(AccountId("c1"), OrderId(original)))
    assert m.status(original) == end
    outcome = _place(m)
    assert of_type(outcome.events, OrderAlreadyExists)[0].order_id == original
    assert m.usd("c1") == ((7_000_000, 0) if end == "filled" else (10_000_000, 0))


def test_a_rejected_order_does_not_reserve_its_client_order_id() -> None:
    m = Market()
    m.account("c1", 1_000_000)
    first = _place(m)
    assert [e.reason for e in of_type(first.events, OrderRejected)] == ["insufficient_funds"]
    assert m.state.accounts["c1"].client_orders == {}
    m.deposit("c1", 2_000_000)
    second = _place(m)
    assert kinds(second.events) == ["OrderAccepted"]
    assert m.state.accounts["c1"].client_orders == {"abc": second.seq}


def test_client_order_ids_are_per_account() -> None:
    m = Market()
    m.account("c1", 10_000_000)
    m.account("c2", 10_000_000)
    first = _place(m, "c1")
    second = _place(m, "c2", quantity_units=1)
    assert of_type(first.events, OrderAccepted)[0].client_order_id == "abc"
    assert of_type(second.events, OrderAccepted)[0].account_id == "c2"
    assert order_id(first) != order_id(second)

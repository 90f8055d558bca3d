"""Every way an order placement can be refused, in the documented check order, and that a
refused order changes nothing: no balance, no order, no book level, no client_order_id."""

from typing import Any, NamedTuple

import pytest

from gridmarket.core.commands import PlaceOrder
from gridmarket.core.events import OrderRejected
from gridmarket.core.ids import AccountId, InstrumentId

from .helpers import TP, TS, Market, variant

TM = InstrumentId("text-max")


class Reject(NamedTuple):
    name: str
    command: PlaceOrder
    reason: str


def _p(
    account: str,
    instrument: str,
    side: Any,
    order_type: Any,
    quantity: Any,
    price: Any,
    tif: Any = "gtc",
    post_only: bool = False,
    cid: str | None = None,
) -> PlaceOrder:
    return PlaceOrder(
        AccountId(account),
        InstrumentId(instrument),
        side,
        order_type,
        quantity,
        price,
        tif,
        post_only,
        cid,
    )


# The market (see `_market`): a first trade at 2.000, so the band is 1.000..3.000; s1 asks
# 1 @ 2.500; c1 has 2 open bids (the limit) holding all its USD, one with client id "dup", and
# no units; c2 has nothing. TS takes quantities in steps of 5; TM charges a 1% taker fee.
# Each row breaks its own check and, where it can, every later one too: the first check wins.
REJECTS = [
    Reject(
        "unknown_account",
        _p("ghost", "nope", "hold", "stop", 0, 1, "day", True, "dup"),
        "unknown_account",
    ),
    Reject(
        "unknown_instrument",
        _p("c1", "nope", "hold", "stop", 0, 1, "day", True, "dup"),
        "unknown_instrument",
    ),
    Reject("invalid_side", _p("c1", TP, "hold", "stop", 0, 1, "day", True, "dup"), "invalid_side"),
    Reject(
        "invalid_order_type",
        _p("c1", TP, "buy", "stop", 0, 1, "day", True, "dup"),
        "invalid_order_type",
    ),
    Reject(
        "invalid_time_in_force",
        _p("c1", TP, "buy", "limit", 0, 1, "day", True, "dup"),
        "invalid_time_in_force",
    ),
    Reject(
        "invalid_quantity_zero",
        _p("c1", TP, "buy", "limit", 0, 1, "ioc", True, "dup"),
        "invalid_quantity",
    ),
    Reject(
        "invalid_quantity_negative",
        _p("c1", TP, "buy", "limit", -1, 1, "ioc", True, "dup"),
        "invalid_quantity",
    ),
    Reject(
        "invalid_quantity_above_max",
        _p("c1", TP, "buy", "limit", 1_000_001, 1, "ioc", True, "dup"),
        "invalid_quantity",
    ),
    Reject(
        "invalid_quantity_bool",
        _p("c1", TP, "buy", "limit", True, 1, "ioc", True, "dup"),
        "invalid_quantity",
    ),
    Reject(
        "invalid_quantity_string",
        _p("c1", TP, "buy", "limit", "1", 1, "ioc", True, "dup"),
        "invalid_quantity",
    ),
    Reject(
        "quantity_off_increment",
        _p("c1", TS, "buy", "limit", 7, 1, "ioc", True, "dup"),
        "quantity_off_increment",
    ),
    Reject(
        "price_required",
        _p("c1", TP, "buy", "limit", 1, None, "ioc", True, "dup"),
        "price_required",
    ),
    Reject(
        "invalid_price_zero",
        _p("c1", TP, "buy", "limit", 1, 0, "ioc", True, "dup"),
        "invalid_price",
    ),
    Reject(
        "invalid_price_negative",
        _p("c1", TP, "buy", "limit", 1, -1_000, "ioc", True, "dup"),
        "invalid_price",
    ),
    Reject(
        "invalid_price_above_max",
        _p("c1", TP, "buy", "limit", 1, 10**12 + 1_000, "ioc", True, "dup"),
        "invalid_price",
    ),
    Reject(
        "invalid_price_bool",
        _p("c1", TP, "buy", "limit", 1, True, "ioc", True, "dup"),
        "invalid_price",
    ),
    Reject(
        "invalid_price_string",
        _p("c1", TP, "buy", "limit", 1, "2.000", "ioc", True, "dup"),
        "invalid_price",
    ),
    Reject(
        "invalid_worst_price_on_market",
        _p("c1", TP, "buy", "market", 1, 0, "gtc", True, "dup"),
        "invalid_price",
    ),
    Reject(
        "price_off_tick",
        _p("c1", TP, "buy", "limit", 1, 2_000_500, "ioc", True, "dup"),
        "price_off_tick",
    ),
    Reject(
        "worst_price_off_tick_on_market",
        _p("c1", TP, "buy", "market", 1, 2_000_500, "gtc", True, "dup"),
        "price_off_tick",
    ),
    Reject(
        "post_only_on_market",
        _p("c1", TP, "buy", "market", 1, None, "gtc", True, "dup"),
        "post_only_not_limit",
    ),
    Reject(
        "post_only_on_ioc",
        _p("c1", TP, "buy", "limit", 1, 5_000_000, "ioc", True, "dup"),
        "post_only_not_limit",
    ),
    Reject(
        "post_only_on_fok",
        _p("c1", TP, "buy", "limit", 1, 5_000_000, "fok", True, "dup"),
        "post_only_not_limit",
    ),
    Reject(
        "client_order_id_conflict",
        _p("c1", TP, "buy", "limit", 2, 5_000_000, "gtc", False, "dup"),
        "client_order_id_conflict",
    ),
    Reject(
        "too_many_open_orders",
        _p("c1", TP, "buy", "limit", 1, 5_000_000, "gtc", False, "new"),
        "too_many_open_orders",
    ),
    Reject(
        "price_out_of_band_above",
        _p("c1", TP, "buy", "limit", 1, 3_001_000, "ioc"),
        "price_out_of_band",
    ),
    Reject(
        "price_out_of_band_below",
        _p("c1", TP, "sell", "limit", 1, 999_000, "ioc"),
        "price_out_of_band",
    ),
    Reject(
        "post_only_would_take",
        _p("c2", TP, "buy", "limit", 1, 2_500_000, "gtc", True),
        "post_only_would_take",
    ),
    Reject(
        "insufficient_funds_limit_buy",
        _p("c1", TP, "buy", "limit", 1, 2_000_000, "ioc"),
        "insufficient_funds",
    ),
    Reject(
        "insufficient_funds_fee_reserve",
        _p("c3", TM, "buy", "limit", 1, 2_000_000, "ioc"),
        "insufficient_funds",
    ),
    Reject(
        "insufficient_funds_market_buy",
        _p("c2", TP, "buy", "market", 1, None),
        "insufficient_funds",
    ),
    Reject(
        "insufficient_units_limit_sell",
        _p("c1", TP, "sell", "limit", 1, 2_000_000, "ioc"),
        "insufficient_units",
    ),
    Reject(
        "insufficient_units_market_sell",
        _p("c2", TP, "sell", "market", 1, None),
        "insufficient_units",
    ),
    Reject(
        "insufficient_units_locked_in_asks",
        _p("s1", TP, "sell", "limit", 2, 2_500_000, "gtc"),
        "insufficient_units",
    ),
]

#: Every reason place_order can give, in the documented check order.
PLACE_ORDER_REASONS = [
    "unknown_account",
    "unknown_instrument",
    "invalid_side",
    "invalid_order_type",
    "invalid_time_in_force",
    "invalid_quantity",
    "quantity_off_increment",
    "price_required",
    "invalid_price",
    "price_off_tick",
    "post_only_not_limit",
    "client_order_id_conflict",
    "too_many_open_orders",
    "price_out_of_band",
    "post_only_would_take",
    "insufficient_funds",
    "insufficient_units",
]


def _market() -> Market:
    m = Market(
        variant(TS, quantity_increment_units=5),
        variant(TM, taker_fee_bps=100),
        max_open_orders_per_account=2,
    )
    m.supplier("s1", 3)
    m.ask("s1", 1, 2_000_000)
    m.account("b0", 10_000_000)
    m.buy("b0", 1, 2_000_000)
    m.ask("s1", 1, 2_500_000)
    m.account("c1", 2_000_000)
    m.bid("c1", 1, 1_000_000, client_order_id="dup")
    m.bid("c1", 1, 1_000_000)
    m.account("c2")
    m.supplier("s2", 1, TM)
    m.ask("s2", 1, 2_000_000, instrument_id=TM)
    m.account("c3", 2_019_999)  # 1 micro-USD short of 2.000 + 1%
    return m


def _book(m: Market) -> dict[str, Any]:
    return {
        i: (list(b.bids.depth()), list(b.asks.depth()), b.last_price_usd_micros, b.market_seq)
        for i, b in m.state.books.items()
    }


@pytest.mark.parametrize("s", REJECTS, ids=lambda s: s.name)
def test_rejected_order_changes_nothing(s: Reject) -> None:
    m = _market()
    balances = dict(m.state.ledger.balances)
    orders = len(m.state.orders)
    client_orders = {a: dict(acc.client_orders) for a, acc in m.state.accounts.items()}
    book = _book(m)
    outcome = m.apply(s.command)
    assert outcome.events == [
        OrderRejected(
            outcome.seq,
            m.now_ms,
            s.command.account_id,
            str(s.command.instrument_id),
            s.command.client_order_id,
            s.reason,
        )
    ]
    assert outcome.postings == []
    assert m.state.ledger.balances == balances
    assert len(m.state.orders) == orders
    assert {a: dict(acc.client_orders) for a, acc in m.state.accounts.items()} == client_orders
    assert _book(m) == book


def test_the_table_covers_every_place_order_reason_in_check_order() -> None:
    seen: list[str] = []
    for row in REJECTS:
        if row.reason not in seen:
            seen.append(row.reason)
    assert seen == PLACE_ORDER_REASONS

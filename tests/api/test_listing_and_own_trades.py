"""The paging helper (`api.listing.page`) and the own-trades read model, without a server."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from starlette.datastructures import QueryParams

from gridmarket.api import listing
from gridmarket.api.errors import Problem
from gridmarket.core.events import Trade
from gridmarket.core.ids import AccountId, InstrumentId, OrderId, TradeId
from gridmarket.service.own_trades import Fill, OwnTrades, fills_of

KEYS = list(range(1, 11))


def _even(key: int) -> bool:
    return key % 2 == 0


class Case(NamedTuple):
    name: str
    descending: bool
    cursor: int | None
    backwards: bool
    keys: list[int]
    #: The keys named by next_cursor and prev_cursor (None: no cursor).
    next_key: int | None
    prev_key: int | None


CASES = [
    Case("asc_first_page", False, None, False, [2, 4], 4, None),
    Case("asc_next", False, 4, False, [6, 8], 8, 6),
    Case("asc_last", False, 8, False, [10], None, 10),
    Case("asc_prev", False, 6, True, [2, 4], 4, None),
    Case("asc_prev_from_the_middle", False, 9, True, [6, 8], 8, 6),
    Case("desc_first_page", True, None, False, [10, 8], 8, None),
    Case("desc_next", True, 8, False, [6, 4], 4, 6),
    Case("desc_prev", True, 4, True, [8, 6], 6, 8),
    Case("cursor_off_the_end", False, 99, False, [], None, None),
]


@pytest.mark.parametrize("s", CASES, ids=lambda s: s.name)
def test_page_walks_both_ways(s: Case) -> None:
    paging = listing.Paging(2, s.descending, s.cursor, s.backwards)
    page = listing.page(KEYS, (0, len(KEYS)), _even, paging, "k")

    def key_of(cursor: str | None) -> int | None:
        return None if cursor is None else listing.decode_cursor("next", cursor, "k")

    assert page.keys == s.keys
    assert key_of(page.paging["next_cursor"]) == s.next_key
    assert key_of(page.paging["prev_cursor"]) == s.prev_key
    assert page.paging["has_more"] is (s.next_key is not None)


def test_time_bounds_are_inclusive_and_parse_iso_or_unix() -> None:
    query = QueryParams("start_datetime=1970-01-01T00:00:03Z&end_datetime=7")
    filters = listing.parse_filters(query, frozenset(), time_columns=("t",))
    assert (filters.start_ms, filters.end_ms) == (3_000, 7_000)
    assert listing.time_range(KEYS, lambda k: k * 1_000, filters) == (2, 7)  # keys 3..7


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "order_direction=sideways",
        "next=a&prev=b",
        "start_datetime=soon",
        "end_datetime=99999999999999",
        "filters[0][field]=side&filters[0][op]=>&filters[0][value]=buy",
        "filters[0][field]=t&filters[0][op]===&filters[0][value]=1",
        "side=" + ",".join(["buy"] * 21),
    ],
)
def test_bad_queries_are_422(query: str) -> None:
    params = QueryParams(query)
    with pytest.raises(Problem) as raised:
        listing.parse_paging(params, "k")
        listing.parse_filters(params, frozenset({"side"}), time_columns=("t",))
    assert raised.value.status_code == 422


def _trade(trade_id: int, buyer: str, seller: str, taker_side: str, seq: int = 1) -> Trade:
    return Trade(
        seq,
        1_000 * seq,
        TradeId(trade_id),
        InstrumentId("text-prime"),
        trade_id,
        2_000_000,
        3,
        AccountId(buyer),
        AccountId(seller),
        OrderId(10),
        OrderId(20),
        taker_side,
        7,
        5,
    )


@pytest.mark.parametrize(
    ("taker_side", "buyer", "seller"),
    [
        ("buy", ("buy", 20, 7, "taker"), ("sell", 10, 5, "maker")),
        ("sell", ("buy", 10, 7, "maker"), ("sell", 20, 5, "taker")),
    ],
)
def test_a_trade_is_one_fill_per_side(
    taker_side: str, buyer: tuple[object, ...], seller: tuple[object, ...]
) -> None:
    buy, sell = fills_of(_trade(1, "b", "s", taker_side))

    def facts(fill: Fill) -> tuple[object, ...]:
        return (fill.side, fill.order_id, fill.fee_usd_micros, fill.liquidity)

    assert (buy.account_id, facts(buy)) == ("b", buyer)
    assert (sell.account_id, facts(sell)) == ("s", seller)


def test_the_model_keeps_each_accounts_own_fills_bounded_and_once() -> None:
    model = OwnTrades(max_fills_per_account=10)
    for n in range(1, 12):
        model.apply_outcome(n, 0, [_trade(n, "b", f"s{n % 2}", "buy", seq=n)])
    model.apply_outcome(5, 0, [_trade(99, "b", "s0", "buy", seq=5)])  # already applied: ignored
    assert model.applied_seq == 11
    # 11 > 10: the oldest tenth (1) and the excess (1) are dropped.
    assert model.trade_ids("b") == list(range(3, 12))
    assert model.fill("b", 2) is None and model.fill("b", 3) is not None
    assert model.trade_ids("s1") == [1, 3, 5, 7, 9, 11]
    assert model.fill("s1", 2) is None  # s0's trade, not s1's
    assert model.trade_ids("nobody") == []

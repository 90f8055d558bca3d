"""Suppliers issue units within capacity × horizon, move them to trading, and their units keep
their supplier through every resale (FIFO batches); liability is sold − delivered − forfeited."""

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from gridmarket.core.commands import (
    ExpireLots,
    IssueUnits,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
    TransferToConsumption,
)
from gridmarket.core.events import Posting, Rejected, UnitsIssued, UnitsTransferred
from gridmarket.core.ids import AccountId, InstrumentId

from .helpers import HOUR_MS, TP, Market, variant

S1 = AccountId("s1")


class Capacity(NamedTuple):
    name: str
    horizon_min: int
    capacity_tokens_per_min: int
    issues: list[int]
    accepted: list[bool]


CAPACITIES = [
    # 12,500 tokens/min × 240 min = 3,000,000 tokens = 3 units.
    Capacity("bound_is_capacity_times_horizon", 240, 12_500, [3, 1], [True, False]),
    Capacity("bound_reached_in_steps", 240, 12_500, [1, 1, 1, 1], [True, True, True, False]),
    Capacity("over_the_bound_at_once_then_within", 240, 12_500, [4, 3], [False, True]),
    # 4,166 × 240 = 999,840 tokens: not even one unit.
    Capacity("less_than_one_unit_of_capacity", 240, 4_166, [1], [False]),
    Capacity("one_token_per_minute_more_is_enough", 240, 4_167, [1], [True]),
    # 50,000 × 60 = 3,000,000 tokens.
    Capacity("shorter_horizon", 60, 50_000, [3, 1], [True, False]),
    Capacity("no_capacity", 240, 0, [1], [False]),
]


@pytest.mark.parametrize("s", CAPACITIES, ids=lambda s: s.name)
def test_issuance_is_bounded_by_capacity_times_horizon(s: Capacity) -> None:
    m = Market(issuance_horizon_min=s.horizon_min)
    m.supplier("s1", capacity_tokens_per_min=s.capacity_tokens_per_min)
    issued = 0
    for units, accepted in zip(s.issues, s.accepted, strict=True):
        before = m.balances()
        outcome = m.apply(IssueUnits(S1, TP, units))
        if accepted:
            issued += units
            assert outcome.events == [UnitsIssued(outcome.seq, m.now_ms, S1, TP, units)]
            assert outcome.postings == [
                Posting(
                    outcome.seq,
                    TP,
                    "s1/text-prime/issued",
                    "s1/text-prime/issuance",
                    units * 1_000_000,
                )
            ]
        else:
            assert outcome.events == [
                Rejected(outcome.seq, m.now_ms, "IssueUnits", S1, "capacity_exceeded")
            ]
            assert m.balances() == before
    assert m.bal("s1/text-prime/issuance") == issued * 1_000_000
    assert m.bal("s1/text-prime/issued") == -issued * 1_000_000


class SupplyReject(NamedTuple):
    name: str
    command: Any
    reason: str


def _units(cls: type, account: str, units: Any, instrument: str = TP) -> Any:
    return cls(AccountId(account), InstrumentId(instrument), units)


SUPPLY_REJECTS = [
    SupplyReject("issue_by_non_supplier", _units(IssueUnits, "c1", 1), "not_a_supplier"),
    SupplyReject("issue_unknown_account", _units(IssueUnits, "ghost", 1), "unknown_account"),
    SupplyReject(
        "issue_unknown_instrument", _units(IssueUnits, "s1", 1, "nope"), "unknown_instrument"
    ),
    SupplyReject("issue_zero", _units(IssueUnits, "s1", 0), "invalid_quantity"),
    SupplyReject("issue_negative", _units(IssueUnits, "s1", -1), "invalid_quantity"),
    SupplyReject("issue_bool", _units(IssueUnits, "s1", True), "invalid_quantity"),
    SupplyReject("issue_huge", _units(IssueUnits, "s1", 1_000_000_001), "invalid_quantity"),
    SupplyReject(
        "to_trading_more_than_issued",
        _units(TransferIssuanceToTrading, "s1", 3),
        "insufficient_units",
    ),
    SupplyReject(
        "to_trading_by_non_supplier",
        _units(TransferIssuanceToTrading, "c1", 1),
        "insufficient_units",
    ),
    SupplyReject("to_trading_zero", _units(TransferIssuanceToTrading, "s1", 0), "invalid_quantity"),
    SupplyReject(
        "to_trading_unknown_instrument",
        _units(TransferIssuanceToTrading, "s1", 1, "nope"),
        "unknown_instrument",
    ),
    SupplyReject(
        "capacity_by_non_supplier", _units(SetSupplierCapacity, "c1", 1), "not_a_supplier"
    ),
    SupplyReject(
        "capacity_unknown_account", _units(SetSupplierCapacity, "ghost", 1), "unknown_account"
    ),
    SupplyReject(
        "capacity_unknown_instrument",
        _units(SetSupplierCapacity, "s1", 1, "nope"),
        "unknown_instrument",
    ),
    SupplyReject("capacity_negative", _units(SetSupplierCapacity, "s1", -1), "invalid_amount"),
    SupplyReject("capacity_bool", _units(SetSupplierCapacity, "s1", True), "invalid_amount"),
    SupplyReject("capacity_huge", _units(SetSupplierCapacity, "s1", 10**12 + 1), "invalid_amount"),
]


@pytest.mark.parametrize("s", SUPPLY_REJECTS, ids=lambda s: s.name)
def test_supply_rejects_change_nothing(s: SupplyReject) -> None:
    m = Market()
    m.supplier("s1")
    m.apply(IssueUnits(S1, TP, 2))
    m.account("c1")
    before = m.balances()
    outcome = m.apply(s.command)
    assert outcome.events == [
        Rejected(outcome.seq, m.now_ms, type(s.command).__name__, s.command.account_id, s.reason)
    ]
    assert m.balances() == before
    assert m.state.accounts["s1"].supplier_positions[TP].capacity_tokens_per_min == 10**9


def test_issuance_to_trading_moves_units_into_the_fifo_queue() -> None:
    m = Market()
    m.supplier("s1")
    m.apply(IssueUnits(S1, TP, 5))
    outcome = m.apply(TransferIssuanceToTrading(S1, TP, 3))
    assert outcome.events == [
        UnitsTransferred(outcome.seq, m.now_ms, S1, TP, "issuance", "trading", 3)
    ]
    assert outcome.postings == [
        Posting(
            outcome.seq, TP, "s1/text-prime/issuance", "s1/text-prime/trading_available", 3_000_000
        )
    ]
    assert m.bal("s1/text-prime/issuance") == 2_000_000
    batches = m.state.accounts["s1"].holdings[TP].batches
    assert [b.snapshot() for b in batches] == [("s1", 0, 3, ())]


def _batches(m: Market, account: str) -> list[tuple[object, ...]]:
    return [b.snapshot() for b in m.state.accounts[account].holdings[TP].batches]


def test_resold_units_keep_their_supplier() -> None:
    m = Market()
    m.bought("c1", 2, 1_000_000)  # trade 1: s1 → c1
    assert m.liability("s1") == 2_000_000
    m.ask("c1", 2, 1_500_000)
    m.account("c2", 3_000_000)
    m.buy("c2", 2, 1_500_000)  # trade 2: c1 → c2
    assert _batches(m, "c2") == [("s1", 1_500_000, 2, (2,))]
    assert m.liability("s1") == 2_000_000  # a resale is not a new sale for s1
    m.apply(TransferToConsumption(AccountId("c2"), TP, 2))
    assert m.lots("c2") == [(1, "s1", 1_500_000, 2_000_000, 0, None)]


def test_fifo_batches_across_two_suppliers() -> None:
    m = Market()
    m.supplier("s1", 1)
    m.supplier("s2", 1)
    m.account("c1", 10_000_000)
    m.ask("s1", 1, 2_000_000)
    m.buy("c1", 1, 2_000_000)  # trade 1
    m.ask("s2", 1, 2_100_000)
    m.buy("c1", 1, 2_100_000)  # trade 2
    assert _batches(m, "c1") == [("s1", 2_000_000, 1, (1,)), ("s2", 2_100_000, 1, (2,))]
    m.ask("c1", 1, 2_200_000)
    m.account("c2", 10_000_000)
    m.buy("c2", 1, 2_200_000)  # trade 3: the oldest batch (s1's) leaves first
    assert _batches(m, "c1") == [("s2", 2_100_000, 1, (2,))]
    assert _batches(m, "c2") == [("s1", 2_200_000, 1, (3,))]
    m.apply(TransferToConsumption(AccountId("c1"), TP, 1))
    m.apply(TransferToConsumption(AccountId("c2"), TP, 1))
    assert m.lots("c1") == [(1, "s2", 2_100_000, 1_000_000, 0, None)]
    assert m.lots("c2") == [(2, "s1", 2_200_000, 1_000_000, 0, None)]
    assert (m.liability("s1"), m.liability("s2")) == (1_000_000, 1_000_000)


Step = Callable[[Market], object]


def _sell_to(buyer: str, units: int) -> Step:
    def step(m: Market) -> object:
        m.ask("s1", units, 1_000_000)
        return m.buy(buyer, units, 1_000_000)

    return step


def _to_consumption(account: str, units: int) -> Step:
    return lambda m: m.apply(TransferToConsumption(AccountId(account), TP, units))


def _use(account: str, call: str, tokens: int) -> Step:
    def step(m: Market) -> object:
        m.commit(call, account, tokens)
        return m.settle(call, tokens)

    return step


def _advance_and_expire(ms: int) -> Step:
    def step(m: Market) -> object:
        m.advance(ms)
        return m.apply(ExpireLots())

    return step


def _buy_back(seller: str, units: int) -> Step:
    def step(m: Market) -> object:
        m.ask(seller, units, 1_000_000)
        return m.buy("s1", units, 1_000_000)

    return step


# Window 1 hour. Each step and s1's liability after it, in tokens.
LIABILITY_STEPS: list[tuple[str, Step, int]] = [
    ("sell_3_to_c1", _sell_to("c1", 3), 3_000_000),
    ("c1_moves_1_to_consumption", _to_consumption("c1", 1), 3_000_000),
    ("half_an_hour_passes", lambda m: m.advance(HOUR_MS // 2), 3_000_000),
    ("c1_moves_2_more", _to_consumption("c1", 2), 3_000_000),
    ("c1_uses_400k", _use("c1", "call-1", 400_000), 2_600_000),
    ("first_lot_expires_forfeits_600k", _advance_and_expire(HOUR_MS // 2), 2_000_000),
    ("sell_1_to_c2", _sell_to("c2", 1), 3_000_000),
    ("s1_buys_it_back", _buy_back("c2", 1), 2_000_000),
    (
        "s1_uses_its_own_unit",
        lambda m: (_to_consumption("s1", 1)(m), _use("s1", "own", 1_000_000)(m)),
        2_000_000,
    ),
    ("second_lot_expires_forfeits_2m", _advance_and_expire(HOUR_MS // 2), 0),
]


def test_liability_is_sold_minus_delivered_minus_forfeited() -> None:
    m = Market(variant(TP, consumption_window_ms=HOUR_MS))
    m.supplier("s1", 10, usd_micros=10_000_000)
    m.account("c1", 10_000_000)
    m.account("c2", 10_000_000)
    seen = []
    for name, step, _ in LIABILITY_STEPS:
        step(m)
        seen.append((name, m.liability("s1")))
    assert seen == [(name, liability) for name, _, liability in LIABILITY_STEPS]
    position = m.state.accounts["s1"].supplier_positions[TP]
    assert (
        position.sold_tokens,
        position.delivered_tokens,
        position.forfeited_tokens,
        position.consumed_own_tokens,
    ) == (3_000_000, 400_000, 2_600_000, 1_000_000)


def test_delivery_and_forfeiture_free_capacity() -> None:
    m = Market(variant(TP, consumption_window_ms=HOUR_MS))
    m.supplier("s1", 3, capacity_tokens_per_min=12_500)  # 3 units of capacity, all issued
    m.account("c1", 10_000_000)
    m.ask("s1", 1, 1_000_000)
    m.buy("c1", 1, 1_000_000)
    m.apply(TransferToConsumption(AccountId("c1"), TP, 1))
    m.commit("call", "c1", 400_000)
    m.settle("call", 400_000)  # outstanding 2,600,000: one more unit would exceed 3,000,000
    assert m.apply(IssueUnits(S1, TP, 1)).events[0].reason == "capacity_exceeded"
    m.advance(HOUR_MS)
    m.apply(ExpireLots())  # 600,000 forfeited: outstanding 2,000,000
    assert type(m.apply(IssueUnits(S1, TP, 1)).events[0]) is UnitsIssued
    assert m.state.accounts["s1"].supplier_positions[TP].outstanding_tokens == 3_000_000


def test_lowering_capacity_blocks_issuance_but_keeps_units() -> None:
    m = Market()
    m.supplier("s1", 3, capacity_tokens_per_min=12_500)
    m.apply(SetSupplierCapacity(S1, TP, 4_167))  # room for 1 unit, 3 outstanding
    assert m.apply(IssueUnits(S1, TP, 1)).events[0].reason == "capacity_exceeded"
    assert m.tokens("s1")[0] == 3_000_000

"""The core is deterministic: the same commands give the same events, postings and digest on a
fresh exchange; seq and time only move forward; and a refused command leaves the state as if it
had never come."""

import copy
from typing import Any

import pytest

from gridmarket.core.commands import (
    CancelAllOrders,
    CancelOrder,
    CommitTokens,
    Deposit,
    ExpireLots,
    IssueUnits,
    PlaceOrder,
    SetAutoTransfer,
    SetSupplierCapacity,
    SettleCall,
    Sweep,
    TransferIssuanceToTrading,
    TransferToConsumption,
    TransferToTrading,
    Withdraw,
)
from gridmarket.core.exchange import Exchange, ExchangeConfig
from gridmarket.core.ids import AccountId, CallId, InstrumentId, OrderId

from .helpers import HOUR_MS, TP, TS, Market, check_invariants, variant

INSTRUMENTS = (
    variant(
        TP,
        maker_fee_bps=10,
        taker_fee_bps=25,
        consumption_window_ms=2 * HOUR_MS,
        sweep_enabled=True,
    ),
    variant(TS, taker_fee_bps=7),
)


def _scripted() -> Market:
    """A session touching every command and most rules."""
    m = Market(*INSTRUMENTS, max_open_orders_per_account=50)
    m.supplier("s1", 20, usd_micros=1_000_000)
    m.supplier("s2", 10)
    m.supplier("s2", 5, TS)
    m.account("c1", 100_000_000)
    m.account("c2", 50_000_000, auto_transfer=True)
    for n in range(5):
        m.ask("s1", 2, 1_000_000 + 10_000 * n)
        m.ask("s2", 1, 1_005_000 + 10_000 * n)
    m.ask("s2", 5, 333_000, instrument_id=TS)
    m.buy("c1", 4, 1_020_000)
    m.buy("c2", 3, order_type="market")
    m.buy("c1", 2, 333_000, instrument_id=TS, time_in_force="ioc")
    m.bid("c1", 3, 990_000, client_order_id="x")
    m.buy("c1", 3, 990_000, client_order_id="x")
    m.sell("s2", 2, 990_000)
    m.advance(HOUR_MS)
    m.apply(TransferToConsumption(AccountId("c1"), TP, 2))
    m.commit("a", "c2", 1_500_000)
    m.commit("b", "c1", 700_000)
    m.settle("a", 1_700_000)
    m.ask("c1", 1, 1_100_000)
    m.buy("c1", 2, 1_100_000, time_in_force="fok")
    m.apply(SetAutoTransfer(AccountId("c1"), True))
    m.buy("c1", 1, 1_040_000)
    m.advance(HOUR_MS)
    m.apply(ExpireLots())
    m.settle("b", 100_000)
    m.apply(Sweep(TP))
    m.apply(CancelAllOrders(AccountId("s1"), TP))
    m.apply(Withdraw(AccountId("c2"), 1_000_000))
    m.apply(TransferToTrading(AccountId("c1"), TP, 1))
    return m


def test_same_commands_same_events_postings_and_digest() -> None:
    first = _scripted()
    assert len(first.log) > 40
    second = Exchange(
        ExchangeConfig(instruments=first.ex.state.instruments, max_open_orders_per_account=50)
    )
    third = Exchange(
        ExchangeConfig(instruments=first.ex.state.instruments, max_open_orders_per_account=50)
    )
    replayed = [second.apply(command, seq, ts) for command, seq, ts in first.log]
    again = [third.apply(command, seq, ts) for command, seq, ts in first.log]
    assert replayed == again
    assert second.digest() == third.digest() == first.ex.digest()
    assert second.state.ledger.balances == first.ex.state.ledger.balances
    check_invariants(second)


def test_the_digest_sees_a_difference() -> None:
    first = _scripted()
    other = Exchange(
        ExchangeConfig(instruments=first.ex.state.instruments, max_open_orders_per_account=50)
    )
    for command, seq, ts in first.log[:-1]:
        other.apply(command, seq, ts)
    other.apply(Deposit(AccountId("c1"), 1), first.log[-1][1], first.log[-1][2])
    assert other.digest() != first.ex.digest()


@pytest.mark.parametrize(
    ("seq_step", "ts_step"),
    [(0, 0), (-1, 0), (1, -1)],
    ids=["same_seq", "seq_goes_back", "time_goes_back"],
)
def test_seq_and_time_only_move_forward(seq_step: int, ts_step: int) -> None:
    m = Market()
    m.account("c1", 1_000_000)
    with pytest.raises(AssertionError):
        m.ex.apply(Deposit(AccountId("c1"), 1), m.seq + seq_step, m.now_ms + ts_step)
    assert m.usd("c1") == (1_000_000, 0)


REFUSED = [
    pytest.param(
        PlaceOrder(AccountId("c2b"), TS, "sell", "limit", 1, 333_000),
        id="sell_without_units",
    ),
    pytest.param(
        PlaceOrder(AccountId("c2b"), TS, "buy", "limit", 1, 333_000),
        id="buy_without_usd",
    ),
    pytest.param(
        TransferToConsumption(AccountId("c2b"), TS, 1),
        id="transfer_without_units",
    ),
    pytest.param(
        CommitTokens(CallId("z"), AccountId("c2b"), TS, 1),
        id="commit_without_lots",
    ),
    pytest.param(IssueUnits(AccountId("s1"), TS, 1), id="issue_without_capacity"),
    pytest.param(
        TransferIssuanceToTrading(AccountId("c2b"), TS, 1),
        id="issuance_to_trading_without_issuance",
    ),
    pytest.param(PlaceOrder(AccountId("c1"), TP, "buy", "limit", 0, 1_000_000), id="invalid_order"),
    pytest.param(CommitTokens(CallId("z"), AccountId("c1"), TP, 10**8), id="commit_too_much"),
    pytest.param(SettleCall(CallId("nope"), 0), id="settle_unknown_call"),
    pytest.param(CancelOrder(AccountId("c1"), OrderId(10**6)), id="cancel_unknown_order"),
    pytest.param(Withdraw(AccountId("c2b"), 1), id="withdraw_without_usd"),
    pytest.param(SetSupplierCapacity(AccountId("s1"), TS, -1), id="negative_capacity"),
    pytest.param(TransferIssuanceToTrading(AccountId("s1"), TP, 10**6), id="unissued_units"),
    pytest.param(TransferToTrading(AccountId("c1"), TP, 1), id="consumption_to_trading"),
    pytest.param(Sweep(TS), id="sweep_disabled"),
    pytest.param(CancelAllOrders(AccountId("c1"), InstrumentId("nope")), id="cancel_all_unknown"),
]


@pytest.mark.parametrize("command", REFUSED)
def test_a_refused_command_leaves_the_state_as_it_was(command: Any) -> None:
    m = _scripted()
    m.account("c2b")
    twin = copy.deepcopy(m.ex)
    m.apply(command)
    # The twin gets a command refused before it can look at anything.
    twin.apply(CancelOrder(AccountId("nobody"), OrderId(10**9)), m.seq, m.now_ms)
    assert twin.digest() == m.ex.digest()

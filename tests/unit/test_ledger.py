"""The journal is double-entry: a posting moves one amount from one key to another, only contra
accounts may go below zero, every asset sums to zero, and the invariant check every unit test
runs after each command really catches an unbalanced or inconsistent state."""

from collections.abc import Callable
from typing import NamedTuple

import pytest

from gridmarket.core.events import Posting
from gridmarket.core.ledger import Ledger, asset_of, key

from .helpers import TP, Market, check_invariants


def test_a_posting_moves_one_amount_between_two_keys() -> None:
    ledger = Ledger()
    ledger.contra.add("external/usd/external")
    ledger.seq = 7
    ledger.post("usd", "external/usd/external", "a/usd/available", 500)
    ledger.post("usd", "a/usd/available", "a/usd/locked", 200)
    assert ledger.balances == {
        "external/usd/external": -500,
        "a/usd/available": 300,
        "a/usd/locked": 200,
    }
    assert ledger.postings == [
        Posting(7, "usd", "external/usd/external", "a/usd/available", 500),
        Posting(7, "usd", "a/usd/available", "a/usd/locked", 200),
    ]
    assert ledger.sums_by_asset() == {"usd": 0}
    assert ledger.negative_accounts() == []


def test_a_zero_posting_is_not_recorded() -> None:
    ledger = Ledger()
    ledger.post("usd", "a/usd/available", "b/usd/available", 0)
    assert (ledger.balances, ledger.postings) == ({}, [])


@pytest.mark.parametrize(
    ("amount", "debit_balance"),
    [(-1, 10), (11, 10)],
    ids=["negative_amount", "overdraft_of_a_non_contra_account"],
)
def test_impossible_postings_fail_an_assertion(amount: int, debit_balance: int) -> None:
    ledger = Ledger()
    ledger.balances["a/usd/available"] = debit_balance
    with pytest.raises(AssertionError):
        ledger.post("usd", "a/usd/available", "b/usd/available", amount)
    assert ledger.balances == {"a/usd/available": debit_balance}


def test_keys_name_owner_asset_bucket() -> None:
    assert key("alice", TP, "trading_available") == "alice/text-prime/trading_available"
    assert asset_of("alice/text-prime/trading_available") == TP
    assert asset_of("operator/usd/fees") == "usd"


def test_every_asset_sums_to_zero_across_a_busy_market() -> None:
    m = Market()
    m.supplier("s1", 5)
    m.account("c1", 10_000_000)
    m.ask("s1", 5, 1_000_000)
    m.buy("c1", 3, 1_000_000)
    assert m.ex.audit() == {"usd": 0, TP: 0}
    # The contra accounts carry the other side: USD from outside, tokens issued by s1.
    assert m.bal("external/usd/external") == -10_000_000
    assert m.bal("s1/text-prime/issued") == -5_000_000
    assert m.state.ledger.negative_accounts() == []


class Tamper(NamedTuple):
    name: str
    tamper: Callable[[Market], None]


def _shift(source: str, target: str) -> Callable[[Market], None]:
    def tamper(m: Market) -> None:
        m.state.ledger.balances[source] -= 1
        m.state.ledger.balances[target] = m.state.ledger.balances.get(target, 0) + 1

    return tamper


def _set(ledger_key: str, value: int) -> Callable[[Market], None]:
    def tamper(m: Market) -> None:
        m.state.ledger.balances[ledger_key] = value

    return tamper


def _overdraw(m: Market) -> None:
    """c1 below zero, the sums still balanced: only the negative-account check can see it."""
    balances = m.state.ledger.balances
    balances["external/usd/external"] += balances["c1/usd/available"] + 1
    balances["c1/usd/available"] = -1


def _order_lock(m: Market) -> None:
    order = next(o for o in m.state.orders.values() if o.is_open and o.is_buy)
    order.locked_usd_micros += 1


def _lot_tokens(m: Market) -> None:
    m.state.accounts["c2"].holdings[TP].lots[0].remaining_tokens += 1


TAMPERS = [
    Tamper("usd_created_from_nothing", _set("c1/usd/available", 10**9)),
    Tamper("a_non_contra_account_below_zero", _overdraw),
    Tamper("locked_usd_without_an_order", _shift("c1/usd/available", "c1/usd/locked")),
    Tamper("an_order_holding_more_than_locked", _order_lock),
    Tamper(
        "units_unlocked_under_an_open_ask",
        _shift("s1/text-prime/trading_locked", "s1/text-prime/trading_available"),
    ),
    Tamper("lot_tokens_out_of_step_with_the_ledger", _lot_tokens),
    Tamper(
        "committed_tokens_without_a_call",
        _shift("c2/text-prime/consumption_available", "c2/text-prime/consumption_committed"),
    ),
]


@pytest.mark.parametrize("s", TAMPERS, ids=lambda s: s.name)
def test_the_invariant_check_catches_a_broken_state(s: Tamper) -> None:
    m = Market()
    m.supplier("s1", 5)
    m.account("c1", 3_000_000)
    m.ask("s1", 2, 1_000_000)
    m.bid("c1", 1, 900_000)
    m.consume("c2", 1, price=1_000_000)
    check_invariants(m.ex)
    s.tamper(m)
    with pytest.raises(AssertionError):
        check_invariants(m.ex)

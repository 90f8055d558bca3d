"""When someone other than a lot's supplier delivers its tokens, the lot's supplier pays the
substitute ceil(tokens × lot price ÷ 1,000,000) micro-USD and its liability falls; short of USD
it pays what it has, the operator pays the rest and books a receivable, which blocks issuance
and USD going out until a deposit or `SettleReceivable` pays it back."""

from typing import Any

import pytest

from gridmarket.core.commands import (
    CommitTokens,
    Deposit,
    IssueUnits,
    SettleCall,
    SettleReceivable,
    SupplierPayout,
    TransferToConsumption,
    Withdraw,
)
from gridmarket.core.events import (
    CallSettled,
    ReceivableSettled,
    Rejected,
    SubstitutionSettled,
    UnitsIssued,
    UsdMoved,
)
from gridmarket.core.ids import AccountId, CallId, LotId
from gridmarket.core.substitution import substitution_usd_micros

from .helpers import TP, Market, kinds, of_type

C1, S1, S2 = AccountId("c1"), AccountId("s1"), AccountId("s2")
RECEIVABLES = "operator/usd/receivables"
SUBSTITUTIONS = "operator/usd/substitutions"
#: 2.500 USD a unit: 2.5 micro-USD a token, so odd token counts round.
PRICE = 2_500_000


def _held(price: int = PRICE, *, s1_usd: int | None = None) -> Market:
    """c1 holds lot 1: 1 unit of s1's bought at `price`; s2 is another supplier with its own
    units; s1 keeps `s1_usd` of its sale proceeds available (all of them by default)."""
    m = Market()
    m.consume("c1", 1, seller="s1", price=price)
    m.supplier("s2", 2)
    if s1_usd is not None:
        m.apply(Withdraw(S1, m.usd("s1")[0] - s1_usd))
    return m


def _call(m: Market, used: int, deliverer: str | None, committed: int = 1_000) -> list[Any]:
    m.apply(CommitTokens(CallId("call"), C1, TP, committed))
    return m.apply(SettleCall(CallId("call"), used, supplier_id=deliverer)).events


def test_another_supplier_delivers_and_is_paid_by_the_lots_supplier() -> None:
    m = _held()
    s1_before, s2_before = m.usd("s1")[0], m.usd("s2")[0]
    liability_before = m.liability("s1")
    outcome_events = _call(m, 700, "s2")
    assert kinds(outcome_events) == ["CallSettled", "SubstitutionSettled"]
    (substituted,) = of_type(outcome_events, SubstitutionSettled)
    # 700 tokens at 2.500 USD per 1,000,000: 1,750 micro-USD
    assert substituted == SubstitutionSettled(
        m.state.seq, m.now_ms, CallId("call"), C1, TP, LotId(1), S1, S2, 700, PRICE, 1_750, 0
    )
    assert m.usd("s1")[0] == s1_before - 1_750
    assert m.usd("s2")[0] == s2_before + 1_750
    assert m.liability("s1") == liability_before - 700
    assert m.bal(RECEIVABLES) == 0 and m.state.accounts[S1].receivable_usd_micros == 0


@pytest.mark.parametrize(
    ("tokens", "price_usd_micros", "amount_usd_micros"),
    [
        (700, PRICE, 1_750),
        (1, PRICE, 3),  # 2.5 rounds up
        (3, 1_000, 1),  # 0.003 rounds up
        (999_999, 1_000, 1_000),
        (1_000_000, 1_000, 1_000),  # a whole unit at its price
        (400_000, PRICE, 1_000_000),
    ],
)
def test_the_substitute_is_paid_the_tokens_value_rounded_up(
    tokens: int, price_usd_micros: int, amount_usd_micros: int
) -> None:
    assert substitution_usd_micros(tokens, price_usd_micros) == amount_usd_micros
    m = _held(price_usd_micros)
    s2_before = m.usd("s2")[0]
    (substituted,) = of_type(_call(m, tokens, "s2", committed=tokens), SubstitutionSettled)
    assert substituted.amount_usd_micros == amount_usd_micros
    assert m.usd("s2")[0] == s2_before + amount_usd_micros


@pytest.mark.parametrize(
    "deliverer", [None, "", "s1"], ids=["no_deliverer", "empty", "the_lots_own_supplier"]
)
def test_no_substitution_without_another_deliverer(deliverer: str | None) -> None:
    m = _held()
    before = m.usd("s1")[0]
    assert kinds(_call(m, 700, deliverer)) == ["CallSettled"]
    assert m.usd("s1")[0] == before and m.bal(SUBSTITUTIONS) == 0


def test_a_failed_call_moves_no_usd() -> None:
    m = _held()
    before = m.balances()
    assert kinds(_call(m, 0, "s2")) == ["CallSettled"]
    assert m.balances() == before


@pytest.mark.parametrize("deliverer", ["operator", "ghost", "c2"])
def test_a_deliverer_without_a_supplier_account_pays_the_operator(deliverer: str) -> None:
    """The operator's own endpoints ("operator"), and ids that are not supplier accounts (an
    unknown one, a consumer), are endpoints the operator configured: the operator is paid."""
    m = _held()
    m.account("c2")
    before = m.usd("s1")[0]
    (substituted,) = of_type(_call(m, 700, deliverer), SubstitutionSettled)
    assert (substituted.substitute_id, substituted.amount_usd_micros) == ("operator", 1_750)
    assert m.bal(SUBSTITUTIONS) == 1_750
    assert m.usd("s1")[0] == before - 1_750
    assert m.usd("c2")[0] == 0


def test_a_lot_billed_twice_in_one_call_is_paid_for_once_rounded_once() -> None:
    """1 token committed, 2 used: the lot is billed twice (commitment, then beyond it); 2 tokens
    at 2.5 are worth 5 micro-USD (rounding each part up would pay 6)."""
    m = _held()
    events = _call(m, 2, "s2", committed=1)
    (settled,) = of_type(events, CallSettled)
    assert settled.billed_lots == ((1, 1), (1, 1))
    (substituted,) = of_type(events, SubstitutionSettled)
    assert (substituted.tokens, substituted.amount_usd_micros) == (2, 5)


def test_a_call_over_two_suppliers_lots_pays_only_for_the_others() -> None:
    """c1 holds a lot of s1's and one of s2's; s2 delivers the call that drew on both."""
    m = _held()
    m.consume("c1", 1, seller="s2", price=2_000_000)
    s1_before, s2_before = m.usd("s1")[0], m.usd("s2")[0]
    events = _call(m, 1_500_000, "s2", committed=1_500_000)
    (substituted,) = of_type(events, SubstitutionSettled)
    assert (substituted.lot_id, substituted.supplier_id, substituted.tokens) == (1, S1, 1_000_000)
    assert substituted.amount_usd_micros == PRICE
    assert (m.usd("s1")[0], m.usd("s2")[0]) == (s1_before - PRICE, s2_before + PRICE)


def test_a_suppliers_own_units_cost_nothing_to_substitute() -> None:
    """A supplier consuming its own issued units (priced 0): recorded, nothing paid."""
    m = Market()
    m.supplier("s1", 1)
    m.supplier("s2")
    m.apply(TransferToConsumption(S1, TP, 1))
    before = m.balances()
    m.apply(CommitTokens(CallId("own"), S1, TP, 10))
    events = m.apply(SettleCall(CallId("own"), 10, supplier_id="s2")).events
    (substituted,) = of_type(events, SubstitutionSettled)
    assert (substituted.price_usd_micros, substituted.amount_usd_micros) == (0, 0)
    assert {k: v for k, v in m.balances().items() if "usd" in k} == {
        k: v for k, v in before.items() if "usd" in k
    }


# -- short of USD: the operator pays, the supplier owes it ---------------------------------------


def test_a_short_supplier_pays_what_it_has_and_the_operator_the_rest() -> None:
    m = _held(s1_usd=1_000)
    s2_before = m.usd("s2")[0]
    (substituted,) = of_type(_call(m, 700, "s2"), SubstitutionSettled)
    assert (substituted.amount_usd_micros, substituted.receivable_usd_micros) == (1_750, 750)
    assert m.usd("s2")[0] == s2_before + 1_750  # the substitute is paid in full
    assert m.usd("s1")[0] == 0
    assert m.bal(RECEIVABLES) == -750
    assert m.state.accounts[S1].receivable_usd_micros == 750


def test_a_supplier_with_nothing_available_owes_it_all() -> None:
    m = _held(s1_usd=0)
    (substituted,) = of_type(_call(m, 700, "operator"), SubstitutionSettled)
    assert substituted.receivable_usd_micros == 1_750
    assert (m.bal(SUBSTITUTIONS), m.bal(RECEIVABLES)) == (1_750, -1_750)


def _rejected(m: Market, command: Any) -> str:
    before = m.balances()
    (rejected,) = m.apply(command).events
    assert isinstance(rejected, Rejected)
    assert m.balances() == before
    return rejected.reason


def test_a_receivable_blocks_issuance_and_usd_out_until_paid_back() -> None:
    m = _held(s1_usd=1_000)
    _call(m, 700, "s2")  # s1 owes 750
    assert _rejected(m, IssueUnits(S1, TP, 1)) == "receivable_outstanding"
    assert _rejected(m, Withdraw(S1, 1)) == "receivable_outstanding"
    assert _rejected(m, SupplierPayout(S1, 1)) == "receivable_outstanding"
    assert _rejected(m, SettleReceivable(S1)) == "insufficient_funds"  # nothing available

    # A deposit pays the receivable first, as far as it goes.
    events = m.apply(Deposit(S1, 500)).events
    assert events[1:] == [ReceivableSettled(m.state.seq, m.now_ms, S1, 500, 250)]
    assert isinstance(events[0], UsdMoved)
    assert (m.usd("s1")[0], m.bal(RECEIVABLES)) == (0, -250)
    assert _rejected(m, IssueUnits(S1, TP, 1)) == "receivable_outstanding"

    # The next deposit pays the last 250; the rest is the supplier's to use again.
    events = m.apply(Deposit(S1, 1_000)).events
    assert events[1:] == [ReceivableSettled(m.state.seq, m.now_ms, S1, 250, 0)]
    assert m.state.accounts[S1].receivable_usd_micros == 0
    assert m.usd("s1")[0] == 750 and m.bal(RECEIVABLES) == 0
    assert _rejected(m, SettleReceivable(S1)) == "no_receivable"
    assert of_type(m.apply(IssueUnits(S1, TP, 1)).events, UnitsIssued)
    assert kinds(m.apply(Withdraw(S1, 750)).events) == ["UsdMoved"]


def test_settle_receivable_pays_from_proceeds_all_or_what_there_is() -> None:
    """s1 still has units in trading when it comes to owe; selling them brings USD that
    `SettleReceivable` pays the receivable from."""
    m = _held(s1_usd=0)
    m.supplier("s1", 2)  # two more units in s1's trading account
    _call(m, 1_000_000, "s2", committed=1_000_000)  # s1 owes 2.500 USD
    assert m.state.accounts[S1].receivable_usd_micros == PRICE
    m.ask("s1", 1, 2_000_000)
    m.account("c3", 2_000_000)
    m.buy("c3", 1, 2_000_000)
    assert m.usd("s1")[0] == 2_000_000  # sale proceeds are not taken on their own
    events = m.apply(SettleReceivable(S1)).events
    assert events == [ReceivableSettled(m.state.seq, m.now_ms, S1, 2_000_000, 500_000)]
    m.ask("s1", 1, 3_000_000)
    m.account("c4", 3_000_000)
    m.buy("c4", 1, 3_000_000)
    events = m.apply(SettleReceivable(S1)).events
    assert events == [ReceivableSettled(m.state.seq, m.now_ms, S1, 500_000, 0)]
    assert (m.usd("s1")[0], m.bal(RECEIVABLES)) == (2_500_000, 0)


def test_settle_receivable_rejects() -> None:
    m = _held()
    assert _rejected(m, SettleReceivable(AccountId("ghost"))) == "unknown_account"
    assert _rejected(m, SettleReceivable(C1)) == "no_receivable"
    assert _rejected(m, SettleReceivable(S1)) == "no_receivable"

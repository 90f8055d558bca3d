"""USD enters and leaves only through deposits, withdrawals and supplier payouts against
external/usd/external, each a single double-entry posting; bad amounts and overdrafts are refused
and change nothing."""

from typing import Any, NamedTuple

import pytest

from gridmarket.core.commands import CreateAccount, Deposit, SupplierPayout, Withdraw
from gridmarket.core.events import AccountCreated, Posting, Rejected, UsdMoved
from gridmarket.core.ids import AccountId

from .helpers import Market

EXTERNAL = "external/usd/external"


class Move(NamedTuple):
    name: str
    command: Any
    #: None: accepted with this UsdMoved kind; else the rejection reason.
    kind: str | None
    reason: str | None
    #: USD available of the command's account after (c1 has 10 USD, 4 of them locked in a bid;
    #: s1 has 5 USD).
    available: int


def _c(cls: type, account: str, amount: Any) -> Any:
    return cls(AccountId(account), amount)


MOVES = [
    Move("deposit", _c(Deposit, "c1", 1_000_000), "deposit", None, 7_000_000),
    Move("deposit_the_maximum", _c(Deposit, "c1", 10**15), "deposit", None, 10**15 + 6_000_000),
    Move("withdraw", _c(Withdraw, "c1", 2_500_000), "withdrawal", None, 3_500_000),
    Move("withdraw_all_available", _c(Withdraw, "c1", 6_000_000), "withdrawal", None, 0),
    Move(
        "withdraw_more_than_available",
        _c(Withdraw, "c1", 6_000_001),
        None,
        "insufficient_funds",
        6_000_000,
    ),
    Move(
        "withdraw_locked_funds",
        _c(Withdraw, "c1", 10_000_000),
        None,
        "insufficient_funds",
        6_000_000,
    ),
    Move("payout", _c(SupplierPayout, "s1", 5_000_000), "payout", None, 0),
    Move(
        "payout_more_than_available",
        _c(SupplierPayout, "s1", 5_000_001),
        None,
        "insufficient_funds",
        5_000_000,
    ),
    Move(
        "payout_to_non_supplier",
        _c(SupplierPayout, "c1", 1_000_000),
        None,
        "not_a_supplier",
        6_000_000,
    ),
    Move(
        "payout_non_supplier_checked_before_amount",
        _c(SupplierPayout, "c1", 0),
        None,
        "not_a_supplier",
        6_000_000,
    ),
    Move("supplier_withdraws_too", _c(Withdraw, "s1", 1_000_000), "withdrawal", None, 4_000_000),
    Move("deposit_unknown_account", _c(Deposit, "ghost", 1), None, "unknown_account", 0),
    Move("withdraw_unknown_account", _c(Withdraw, "ghost", 1), None, "unknown_account", 0),
    Move("payout_unknown_account", _c(SupplierPayout, "ghost", 1), None, "unknown_account", 0),
    Move(
        "unknown_account_checked_before_amount",
        _c(Deposit, "ghost", -1),
        None,
        "unknown_account",
        0,
    ),
]

BAD_AMOUNTS = [
    ("zero", 0),
    ("negative", -1),
    ("bool", True),
    ("float", 1.5),
    ("whole_float", 1.0),
    ("string", "1"),
    ("none", None),
    ("huge", 10**15 + 1),
]
MOVES += [
    Move(f"{cls.__name__.lower()}_{label}", _c(cls, account, amount), None, "invalid_amount", left)
    for cls, account, left in (
        (Deposit, "c1", 6_000_000),
        (Withdraw, "c1", 6_000_000),
        (SupplierPayout, "s1", 5_000_000),
    )
    for label, amount in BAD_AMOUNTS
]


def _market() -> Market:
    m = Market()
    m.account("c1", 10_000_000)
    m.bid("c1", 2, 2_000_000)
    m.supplier("s1", usd_micros=5_000_000)
    return m


@pytest.mark.parametrize("s", MOVES, ids=lambda s: s.name)
def test_usd_moves(s: Move) -> None:
    m = _market()
    before = m.balances()
    outcome = m.apply(s.command)
    account = s.command.account_id
    amount = s.command.amount_usd_micros
    if s.kind is None:
        assert outcome.events == [
            Rejected(outcome.seq, m.now_ms, type(s.command).__name__, account, s.reason)
        ]
        assert outcome.postings == []
        assert m.balances() == before
    else:
        assert outcome.events == [UsdMoved(outcome.seq, m.now_ms, account, s.kind, amount)]
        debit, credit = (
            (EXTERNAL, f"{account}/usd/available")
            if s.kind == "deposit"
            else (f"{account}/usd/available", EXTERNAL)
        )
        assert outcome.postings == [Posting(outcome.seq, "usd", debit, credit, amount)]
    assert m.bal(f"{account}/usd/available") == s.available
    # Locked funds are never touched by a USD move.
    assert m.usd("c1")[1] == 4_000_000


def test_external_mirrors_deposits_minus_withdrawals() -> None:
    m = Market()
    m.account("c1", 7_000_000)
    m.account("c2", 3_000_000)
    m.apply(Withdraw(AccountId("c1"), 1_500_000))
    assert m.bal(EXTERNAL) == -8_500_000
    assert m.ex.audit() == {"usd": 0}
    assert m.state.ledger.negative_accounts() == []


class Create(NamedTuple):
    name: str
    account_id: Any
    accepted: bool


CREATES = [
    Create("plain", "alice", True),
    Create("sixty_four_chars", "a" * 64, True),
    Create("empty", "", False),
    Create("sixty_five_chars", "a" * 65, False),
    Create("slash", "a/b", False),
    Create("operator_is_reserved", "operator", False),
    Create("external_is_reserved", "external", False),
    Create("not_a_string", 7, False),
    Create("duplicate", "taken", False),
]


@pytest.mark.parametrize("s", CREATES, ids=lambda s: s.name)
def test_create_account(s: Create) -> None:
    m = Market()
    m.account("taken")
    outcome = m.apply(CreateAccount(s.account_id, is_supplier=True, auto_transfer=True))
    if s.accepted:
        assert outcome.events == [AccountCreated(outcome.seq, m.now_ms, s.account_id, True, True)]
        account = m.state.accounts[s.account_id]
        assert (account.is_supplier, account.auto_transfer) == (True, True)
    else:
        assert [type(e).__name__ for e in outcome.events] == ["Rejected"]
        assert len(m.state.accounts) == 1
    if s.name == "duplicate":
        assert outcome.events[0].reason == "account_exists"
        assert m.state.accounts["taken"].is_supplier is False

"""USD in and out: deposits, withdrawals and supplier payouts, against `external/usd/external`.

A supplier that owes the operator for substitutions (`receivables`) pays that first from any
deposit, and may not withdraw or be paid out until it owes nothing.
"""

from gridmarket.core import receivables
from gridmarket.core.commands import Deposit, SupplierPayout, Withdraw
from gridmarket.core.events import UsdMoved
from gridmarket.core.ledger import USD
from gridmarket.core.reasons import RejectReason
from gridmarket.core.state import MarketState


def _valid_amount(state: MarketState, amount_usd_micros: int) -> bool:
    return (
        type(amount_usd_micros) is int
        and 0 < amount_usd_micros <= state.config.max_usd_move_usd_micros
    )


def deposit(state: MarketState, command: Deposit) -> None:
    account = state.accounts.get(command.account_id)
    if account is None:
        return state.reject("Deposit", command.account_id, RejectReason.unknown_account)
    if not _valid_amount(state, command.amount_usd_micros):
        return state.reject("Deposit", command.account_id, RejectReason.invalid_amount)
    state.ledger.post(USD, state.external_usd_key, account.usd_available, command.amount_usd_micros)
    state.events.append(
        UsdMoved(state.seq, state.ts_ms, account.account_id, "deposit", command.amount_usd_micros)
    )
    if account.receivable_usd_micros:
        receivables.collect(state, account)


def withdraw(state: MarketState, command: Withdraw | SupplierPayout) -> None:
    """A withdrawal, or a supplier payout (the same movement, only for suppliers)."""
    name = type(command).__name__
    account = state.accounts.get(command.account_id)
    if account is None:
        return state.reject(name, command.account_id, RejectReason.unknown_account)
    if isinstance(command, SupplierPayout) and not account.is_supplier:
        return state.reject(name, command.account_id, RejectReason.not_a_supplier)
    if not _valid_amount(state, command.amount_usd_micros):
        return state.reject(name, command.account_id, RejectReason.invalid_amount)
    if account.receivable_usd_micros:
        return state.reject(name, command.account_id, RejectReason.receivable_outstanding)
    if state.ledger.get(account.usd_available) < command.amount_usd_micros:
        return state.reject(name, command.account_id, RejectReason.insufficient_funds)
    state.ledger.post(USD, account.usd_available, state.external_usd_key, command.amount_usd_micros)
    kind = "payout" if isinstance(command, SupplierPayout) else "withdrawal"
    state.events.append(
        UsdMoved(state.seq, state.ts_ms, account.account_id, kind, command.amount_usd_micros)
    )

"""Receivables: what a supplier owes the operator for substitutions the operator paid for it.

When a supplier must pay a substitute more than its available USD (`substitution`), it pays
all it has and the operator pays the rest, from `operator/usd/receivables` (a contra account:
its balance is minus the total owed), booking that rest on the supplier
(`Account.receivable_usd_micros`). So the operator stands behind every substitution, and the
supplier's debt is explicit and audited: −`operator/usd/receivables` = Σ receivables.

While a supplier owes anything:
- it may not issue units (`IssueUnits`: `receivable_outstanding`), DESIGN section 9;
- it may not take USD out (`Withdraw`, `SupplierPayout`: `receivable_outstanding`), so the
  money it owes cannot leave before the debt is paid.

It is paid back, from the supplier's available USD (never USD locked in its bids), by:
- any deposit to it: the deposit is credited, then pays the receivable first, as far as the
  available USD goes;
- `SettleReceivable`: pays it from USD the supplier already holds (e.g. the proceeds of units
  it sold), all of it or as much as it has; refused with `no_receivable` when nothing is owed
  and `insufficient_funds` when it has no available USD.
Each payment is a `ReceivableSettled` event with what is still outstanding.
"""

from gridmarket.core.accounts import Account
from gridmarket.core.commands import SettleReceivable
from gridmarket.core.events import ReceivableSettled
from gridmarket.core.ledger import USD
from gridmarket.core.reasons import RejectReason
from gridmarket.core.state import MarketState


def book(state: MarketState, supplier: Account, payee_key: str, receivable_usd_micros: int) -> None:
    """The operator pays `payee_key` what `supplier` could not, and books it as its debt."""
    state.ledger.post(USD, state.receivables_key, payee_key, receivable_usd_micros)
    supplier.receivable_usd_micros += receivable_usd_micros


def collect(state: MarketState, account: Account) -> None:
    """Pay as much of the account's receivable as its available USD covers (nothing if none)."""
    paid_usd_micros = min(account.receivable_usd_micros, state.ledger.get(account.usd_available))
    if paid_usd_micros <= 0:
        return
    state.ledger.post(USD, account.usd_available, state.receivables_key, paid_usd_micros)
    account.receivable_usd_micros -= paid_usd_micros
    state.events.append(
        ReceivableSettled(
            state.seq,
            state.ts_ms,
            account.account_id,
            paid_usd_micros,
            account.receivable_usd_micros,
        )
    )


def settle_receivable(state: MarketState, command: SettleReceivable) -> None:
    name = "SettleReceivable"
    account = state.accounts.get(command.account_id)
    if account is None:
        return state.reject(name, command.account_id, RejectReason.unknown_account)
    if not account.receivable_usd_micros:
        return state.reject(name, command.account_id, RejectReason.no_receivable)
    if not state.ledger.get(account.usd_available):
        return state.reject(name, command.account_id, RejectReason.insufficient_funds)
    collect(state, account)

"""The exchange: applies one command at a time to the market state and says what happened.

`Exchange.apply(command, seq, ts_ms)` is the only way state changes. It is pure and
deterministic: the same commands with the same sequence numbers and timestamps give the same
events, postings and state, which is what makes the stored command log a complete backup
(replay) and lets the sequencer acknowledge a command once its events are stored. A refused
command changes nothing and yields a single rejection event.
"""

from collections.abc import Callable
from hashlib import blake2b
from typing import Any, NamedTuple

from gridmarket.core import funds, lots, matching, receivables, supply
from gridmarket.core.accounts import Account
from gridmarket.core.commands import (
    CancelAllOrders,
    CancelOrder,
    Command,
    CommitTokens,
    CreateAccount,
    Deposit,
    ExpireLots,
    IssueUnits,
    PlaceOrder,
    ReplaceOrder,
    SetAutoTransfer,
    SetSupplierCapacity,
    SettleCall,
    SettleReceivable,
    SupplierPayout,
    Sweep,
    TransferIssuanceToTrading,
    TransferToConsumption,
    TransferToTrading,
    Withdraw,
)
from gridmarket.core.events import AccountCreated, AutoTransferSet, Event, Posting
from gridmarket.core.ids import EXTERNAL, OPERATOR, InstrumentId
from gridmarket.core.reasons import RejectReason
from gridmarket.core.state import ExchangeConfig, MarketState

__all__ = ["Exchange", "ExchangeConfig", "Outcome"]

MAX_ACCOUNT_ID_LENGTH = 64
_new_record = tuple.__new__  # faster than a NamedTuple's own __new__ (see ledger.py)


class Outcome(NamedTuple):
    seq: int
    ts_ms: int
    events: list[Event]
    postings: list[Posting]


def _create_account(state: MarketState, command: CreateAccount) -> None:
    account_id = command.account_id
    if (
        type(account_id) is not str
        or not 0 < len(account_id) <= MAX_ACCOUNT_ID_LENGTH
        or "/" in account_id
        or account_id in (OPERATOR, EXTERNAL)
    ):
        return state.reject("CreateAccount", None, RejectReason.invalid_account_id)
    if account_id in state.accounts:
        return state.reject("CreateAccount", account_id, RejectReason.account_exists)
    state.accounts[account_id] = Account(
        account_id, bool(command.is_supplier), bool(command.auto_transfer)
    )
    state.events.append(
        AccountCreated(
            state.seq,
            state.ts_ms,
            account_id,
            bool(command.is_supplier),
            bool(command.auto_transfer),
        )
    )


def _set_auto_transfer(state: MarketState, command: SetAutoTransfer) -> None:
    account = state.accounts.get(command.account_id)
    if account is None:
        return state.reject("SetAutoTransfer", command.account_id, RejectReason.unknown_account)
    account.auto_transfer = bool(command.auto_transfer)
    state.events.append(
        AutoTransferSet(state.seq, state.ts_ms, account.account_id, account.auto_transfer)
    )


def _expire(state: MarketState, command: ExpireLots) -> None:
    lots.expire(state)


_HANDLERS: dict[type[Any], Callable[[MarketState, Any], None]] = {
    PlaceOrder: matching.place_order,
    CancelOrder: matching.cancel_order,
    ReplaceOrder: matching.replace_order,
    CancelAllOrders: matching.cancel_all,
    CreateAccount: _create_account,
    SetAutoTransfer: _set_auto_transfer,
    Deposit: funds.deposit,
    Withdraw: funds.withdraw,
    SupplierPayout: funds.withdraw,
    SetSupplierCapacity: supply.set_capacity,
    IssueUnits: supply.issue,
    TransferIssuanceToTrading: supply.issuance_to_trading,
    TransferToConsumption: lots.transfer_to_consumption,
    TransferToTrading: lots.transfer_to_trading,
    CommitTokens: lots.commit,
    SettleCall: lots.settle,
    SettleReceivable: receivables.settle_receivable,
    ExpireLots: _expire,
    Sweep: lots.sweep,
}


class Exchange:
    def __init__(self, config: ExchangeConfig | None = None) -> None:
        self.state = MarketState(config or ExchangeConfig())

    def apply(self, command: Command, seq: int, ts_ms: int) -> Outcome:
        state = self.state
        assert seq > state.seq, (seq, state.seq)
        assert ts_ms >= state.ts_ms, (ts_ms, state.ts_ms)
        state.seq = seq
        state.ts_ms = ts_ms
        ledger = state.ledger
        ledger.seq = seq
        events: list[Event] = []
        postings: list[Posting] = []
        state.events = events
        ledger.postings = postings
        _HANDLERS[type(command)](state, command)
        return _new_record(Outcome, (seq, ts_ms, events, postings))

    # Reads -------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self.state.seq

    def balance(self, ledger_key: str) -> int:
        return self.state.ledger.get(ledger_key)

    def next_expiry_ms(self) -> int | None:
        """When an `ExpireLots` command next has work to do (None: no lot will expire)."""
        return lots.next_expiry_ms(self.state)

    def sweeps_due(self, now_ms: int) -> list[InstrumentId]:
        """Instruments whose scheduled sweep is due at `now_ms` (see `lots.sweep_due`)."""
        return lots.sweep_due(self.state, now_ms)

    def audit(self) -> dict[str, int]:
        """Per asset, the sum over every ledger account: all zero when the books balance."""
        return self.state.ledger.sums_by_asset()

    def digest(self) -> str:
        """A fingerprint of the whole state: equal digests mean identical state."""
        state = self.state
        h = blake2b(digest_size=16)

        def feed(item: object) -> None:
            h.update(repr(item).encode())
            h.update(b"\n")

        feed((state.seq, state.ts_ms, state.next_trade_id, state.next_lot_id))
        feed(sorted(state.last_sweep_ms.items()))
        feed(sorted(state.ledger.balances.items()))
        for order_id in sorted(state.orders):
            feed(state.orders[order_id].snapshot())
        for instrument_id in sorted(state.books):
            book = state.books[instrument_id]
            feed((instrument_id, book.last_price_usd_micros, book.market_seq))
            feed([o.order_id for o in book.bids.open_orders()])
            feed([o.order_id for o in book.asks.open_orders()])
        for account_id in sorted(state.accounts):
            account = state.accounts[account_id]
            feed(
                (
                    account_id,
                    account.is_supplier,
                    account.auto_transfer,
                    account.receivable_usd_micros,
                )
            )
            feed(list(account.open_order_ids))
            feed(sorted(account.client_orders.items()))
            for held_id in sorted(account.holdings):
                holding = account.holdings[held_id]
                feed([b.snapshot() for b in holding.batches])
                feed([lot.snapshot() for lot in holding.lots])
            for supplied_id in sorted(account.supplier_positions):
                feed(account.supplier_positions[supplied_id].snapshot())
        feed(sorted(state.key_tokens.items()))
        for call_id in sorted(state.calls):
            call = state.calls[call_id]
            feed(
                (
                    call_id,
                    call.account_id,
                    call.key_id,
                    call.tokens,
                    [(lot.lot_id, t) for lot, t in call.allocations],
                )
            )
        return h.hexdigest()

"""Supply: issuance bounded by capacity, issuance → trading, and moving units FIFO by supplier.

A supplier issues units into its issuance account (credited against its own contra account
`<supplier>/<instrument>/issued`), as long as outstanding tokens (issued − delivered −
forfeited) stay within capacity × `issuance_horizon_min` and it owes the operator nothing for
substitutions (`receivables`). Units moved to trading join the account's FIFO queue of
batches. Whenever units leave a holder, they are taken from the front of its queue; when a
supplier's units pass to someone else its liability (sold − delivered − forfeited) rises, and
falls if they come back to it.
"""

from gridmarket.core.accounts import Batch, Holding
from gridmarket.core.commands import IssueUnits, SetSupplierCapacity, TransferIssuanceToTrading
from gridmarket.core.events import SupplierCapacitySet, UnitsIssued, UnitsTransferred
from gridmarket.core.ids import AccountId, InstrumentId, TradeId
from gridmarket.core.reasons import RejectReason
from gridmarket.core.state import MarketState
from gridmarket.core.units import TOKENS_PER_UNIT


def set_capacity(state: MarketState, command: SetSupplierCapacity) -> None:
    name = "SetSupplierCapacity"
    account = state.accounts.get(command.account_id)
    if account is None:
        return state.reject(name, command.account_id, RejectReason.unknown_account)
    if not account.is_supplier:
        return state.reject(name, command.account_id, RejectReason.not_a_supplier)
    if command.instrument_id not in state.instruments:
        return state.reject(name, command.account_id, RejectReason.unknown_instrument)
    capacity = command.capacity_tokens_per_min
    if type(capacity) is not int or not 0 <= capacity <= 10**12:
        return state.reject(name, command.account_id, RejectReason.invalid_amount)
    state.supplier_position(
        account.account_id, command.instrument_id
    ).capacity_tokens_per_min = capacity
    state.events.append(
        SupplierCapacitySet(
            state.seq, state.ts_ms, account.account_id, command.instrument_id, capacity
        )
    )


def _check_units(
    state: MarketState, name: str, account_id: AccountId, instrument_id: InstrumentId, units: int
) -> bool:
    """Common checks for a units movement; rejects (and returns False) when one fails."""
    account = state.accounts.get(account_id)
    if account is None:
        state.reject(name, account_id, RejectReason.unknown_account)
        return False
    instrument = state.instruments.get(instrument_id)
    if instrument is None:
        state.reject(name, account_id, RejectReason.unknown_instrument)
        return False
    if type(units) is not int or not 0 < units <= instrument.max_quantity_units * 1_000:
        state.reject(name, account_id, RejectReason.invalid_quantity)
        return False
    return True


def issue(state: MarketState, command: IssueUnits) -> None:
    name = "IssueUnits"
    if not _check_units(
        state, name, command.account_id, command.instrument_id, command.quantity_units
    ):
        return None
    account = state.accounts[command.account_id]
    if not account.is_supplier:
        return state.reject(name, command.account_id, RejectReason.not_a_supplier)
    if account.receivable_usd_micros:
        return state.reject(name, command.account_id, RejectReason.receivable_outstanding)
    existing = account.supplier_positions.get(command.instrument_id)  # refusals create nothing
    tokens = command.quantity_units * TOKENS_PER_UNIT
    if existing is None or (
        existing.outstanding_tokens + tokens
        > existing.capacity_tokens_per_min * state.config.issuance_horizon_min
    ):
        return state.reject(name, command.account_id, RejectReason.capacity_exceeded)
    position = existing
    holding = account.holding(command.instrument_id)
    state.ledger.post(command.instrument_id, position.issued_key, holding.issuance, tokens)
    position.issued_tokens += tokens
    state.events.append(
        UnitsIssued(
            state.seq,
            state.ts_ms,
            account.account_id,
            command.instrument_id,
            command.quantity_units,
        )
    )


def issuance_to_trading(state: MarketState, command: TransferIssuanceToTrading) -> None:
    name = "TransferIssuanceToTrading"
    if not _check_units(
        state, name, command.account_id, command.instrument_id, command.quantity_units
    ):
        return None
    account = state.accounts[command.account_id]
    holding = account.holdings.get(command.instrument_id)  # a refusal must not create one
    tokens = command.quantity_units * TOKENS_PER_UNIT
    if holding is None or state.ledger.get(holding.issuance) < tokens:
        return state.reject(name, command.account_id, RejectReason.insufficient_units)
    state.ledger.post(command.instrument_id, holding.issuance, holding.trading_available, tokens)
    add_batch(holding, Batch(account.account_id, 0, command.quantity_units, ()))
    state.events.append(
        UnitsTransferred(
            state.seq,
            state.ts_ms,
            account.account_id,
            command.instrument_id,
            "issuance",
            "trading",
            command.quantity_units,
        )
    )


def add_batch(holding: Holding, batch: Batch) -> None:
    holding.batches.append(batch)


def take_units(
    state: MarketState,
    holding: Holding,
    holder_id: AccountId,
    instrument_id: InstrumentId,
    units: int,
    receiver_id: AccountId,
) -> list[tuple[AccountId, int, int, tuple[TradeId, ...]]]:
    """Take `units` from the front of a holder's queue: (supplier, price, units, trades) chunks.

    Keeps each supplier's sold figure right as units change hands (a holder moving units to
    its own consumption account is not a sale).
    """
    chunks = []
    batches = holding.batches
    if holder_id == receiver_id:
        # Moving within one account is not a sale: no supplier figures change.
        while units:
            batch = batches[0]
            taken = batch.units if batch.units <= units else units
            batch.units -= taken
            if not batch.units:
                batches.popleft()
            units -= taken
            chunks.append((batch.supplier_id, batch.price_usd_micros, taken, batch.trade_ids))
        return chunks
    while units:
        batch = batches[0]
        taken = batch.units if batch.units <= units else units
        batch.units -= taken
        if not batch.units:
            batches.popleft()
        units -= taken
        supplier_id = batch.supplier_id
        if supplier_id == holder_id:
            state.supplier_position(supplier_id, instrument_id).sold_tokens += (
                taken * TOKENS_PER_UNIT
            )
        elif supplier_id == receiver_id:
            state.supplier_position(supplier_id, instrument_id).sold_tokens -= (
                taken * TOKENS_PER_UNIT
            )
        chunks.append((supplier_id, batch.price_usd_micros, taken, batch.trade_ids))
    return chunks

"""Consumption: lots, token commitments for calls in flight, settlement, expiry and sweeps.

Units moved from trading to consumption become lots, one per run of (supplier, price) in the
FIFO queue, each with an expiry from the instrument's consumption window (None: never). Calls
commit tokens from the lots that expire soonest (then the oldest), skipping expired ones;
settling debits the used part (committed first; usage beyond the commitment from available
lots; what even they cannot cover is reported as unbilled), releases the rest, and can happen
only once. Delivered tokens post back to the supplier's `issued` contra account (and when
someone else delivered them, the supplier pays it: `substitution`); expired
uncommitted tokens are forfeited to the operator, and what a call still held of an expired lot
is forfeited when that call settles. Consumption → trading is always refused.
"""

from gridmarket.core.accounts import Account, Holding, Lot
from gridmarket.core.commands import (
    CommitTokens,
    SettleCall,
    Sweep,
    TransferToConsumption,
    TransferToTrading,
)
from gridmarket.core.events import (
    CallSettled,
    LotCreated,
    TokensCommitted,
    TokensForfeited,
    UnitsTransferred,
)
from gridmarket.core.ids import AccountId, InstrumentId, LotId, TradeId
from gridmarket.core.reasons import CancelReason, RejectReason
from gridmarket.core.state import Call, MarketState
from gridmarket.core.substitution import settle_substitutions
from gridmarket.core.supply import _check_units, take_units
from gridmarket.core.units import TOKENS_PER_UNIT

SWEEP_PERIOD_MS = 4 * 3_600_000


def next_sweep_at_ms(now_ms: int) -> int:
    """The next scheduled sweep strictly after `now_ms`: 00/04/08/12/16/20 UTC."""
    return (now_ms // SWEEP_PERIOD_MS + 1) * SWEEP_PERIOD_MS


def sweep_due(state: MarketState, now_ms: int) -> list[InstrumentId]:
    """Instruments with sweeps enabled whose latest 4-hour boundary has not been swept yet."""
    boundary_ms = now_ms // SWEEP_PERIOD_MS * SWEEP_PERIOD_MS
    return [
        instrument.instrument_id
        for instrument in state.instruments.values()
        if instrument.sweep_enabled
        and state.last_sweep_ms.get(instrument.instrument_id, -1) < boundary_ms
    ]


def next_expiry_ms(state: MarketState) -> int | None:
    """When the next lot with uncommitted tokens expires (None: no lot ever will)."""
    return min(
        (
            lot.expires_at_ms
            for lot in state.lots.values()
            if lot.expires_at_ms is not None and lot.available_tokens
        ),
        default=None,
    )


def add_lots(
    state: MarketState,
    account_id: AccountId,
    holding: Holding,
    instrument_id: InstrumentId,
    chunks: list[tuple[AccountId, int, int, tuple[TradeId, ...]]],
) -> None:
    """Turn (supplier, price, units, trades) chunks into lots; one lot per consecutive run."""
    window_ms = state.instruments[instrument_id].consumption_window_ms
    expires_at_ms = None if window_ms is None else state.ts_ms + window_ms
    runs: list[tuple[AccountId, int, int, tuple[TradeId, ...]]] = []
    for chunk in chunks:
        if runs and runs[-1][0] == chunk[0] and runs[-1][1] == chunk[1]:
            supplier_id, price, units, trade_ids = runs[-1]
            # One trade can take several batches of one supplier: name it once.
            new_ids = tuple(t for t in chunk[3] if t not in trade_ids)
            runs[-1] = (supplier_id, price, units + chunk[2], trade_ids + new_ids)
        else:
            runs.append(chunk)
    for supplier_id, price, units, trade_ids in runs:
        lot_id = LotId(state.next_lot_id)
        state.next_lot_id += 1
        tokens = units * TOKENS_PER_UNIT
        lot = Lot(
            lot_id,
            account_id,
            instrument_id,
            supplier_id,
            price,
            tokens,
            trade_ids,
            state.ts_ms,
            expires_at_ms,
        )
        holding.lots.append(lot)
        state.lots[lot_id] = lot
        state.events.append(
            LotCreated(
                state.seq,
                state.ts_ms,
                lot_id,
                account_id,
                lot.instrument_id,
                lot.supplier_id,
                lot.price_usd_micros,
                tokens,
                lot.trade_ids,
                expires_at_ms,
            )
        )


def transfer_to_consumption(state: MarketState, command: TransferToConsumption) -> None:
    name = "TransferToConsumption"
    if not _check_units(
        state, name, command.account_id, command.instrument_id, command.quantity_units
    ):
        return None
    account = state.accounts[command.account_id]
    holding = account.holdings.get(command.instrument_id)  # a refusal must not create one
    tokens = command.quantity_units * TOKENS_PER_UNIT
    if holding is None or state.ledger.get(holding.trading_available) < tokens:
        return state.reject(name, command.account_id, RejectReason.insufficient_units)
    _move_to_consumption(state, account, holding, command.instrument_id, command.quantity_units)


def _move_to_consumption(
    state: MarketState, account: Account, holding: Holding, instrument_id: InstrumentId, units: int
) -> None:
    state.ledger.post(
        instrument_id,
        holding.trading_available,
        holding.consumption_available,
        units * TOKENS_PER_UNIT,
    )
    chunks = take_units(
        state, holding, account.account_id, instrument_id, units, account.account_id
    )
    add_lots(state, account.account_id, holding, instrument_id, chunks)
    state.events.append(
        UnitsTransferred(
            state.seq,
            state.ts_ms,
            account.account_id,
            instrument_id,
            "trading",
            "consumption",
            units,
        )
    )


def transfer_to_trading(state: MarketState, command: TransferToTrading) -> None:
    name = "TransferToTrading"
    if not _check_units(
        state, name, command.account_id, command.instrument_id, command.quantity_units
    ):
        return None
    state.reject(name, command.account_id, RejectReason.consumption_to_trading_refused)


def commit(state: MarketState, command: CommitTokens) -> None:
    name = "CommitTokens"
    account = state.accounts.get(command.account_id)
    if account is None:
        return state.reject(name, command.account_id, RejectReason.unknown_account)
    if command.instrument_id not in state.instruments:
        return state.reject(name, command.account_id, RejectReason.unknown_instrument)
    tokens = command.tokens
    if type(tokens) is not int or not 0 < tokens <= state.config.max_call_tokens:
        return state.reject(name, command.account_id, RejectReason.invalid_amount)
    if command.call_id in state.calls:
        return state.reject(name, command.account_id, RejectReason.call_exists)
    key_id, cap = command.key_id, command.key_spend_cap_tokens
    if not (key_id is None or (type(key_id) is str and 0 < len(key_id) <= MAX_RECEIPT_TEXT)):
        return state.reject(name, command.account_id, RejectReason.invalid_receipt)
    if cap is not None:
        if type(cap) is not int or cap < 0 or key_id is None:
            return state.reject(name, command.account_id, RejectReason.invalid_amount)
        if state.key_tokens.get(key_id, 0) + tokens > cap:
            return state.reject(name, command.account_id, RejectReason.spend_cap_reached)
    holding = account.holdings.get(command.instrument_id)  # a refusal must not create one
    now_ms = state.ts_ms
    usable = sorted(
        (
            lot
            for lot in (holding.lots if holding else ())
            if lot.available_tokens and not lot.expired(now_ms)
        ),
        key=Lot.draw_order,
    )
    if holding is None or sum(lot.available_tokens for lot in usable) < tokens:
        return state.reject(name, command.account_id, RejectReason.insufficient_tokens)
    allocations: list[tuple[Lot, int]] = []
    needed = tokens
    for lot in usable:
        taken = min(lot.available_tokens, needed)
        lot.committed_tokens += taken
        allocations.append((lot, taken))
        needed -= taken
        if not needed:
            break
    state.ledger.post(
        command.instrument_id, holding.consumption_available, holding.consumption_committed, tokens
    )
    state.calls[command.call_id] = Call(
        command.call_id, account.account_id, command.instrument_id, tokens, allocations, key_id
    )
    if key_id is not None:
        state.key_tokens[key_id] = state.key_tokens.get(key_id, 0) + tokens
    state.events.append(
        TokensCommitted(
            state.seq,
            state.ts_ms,
            command.call_id,
            account.account_id,
            command.instrument_id,
            tokens,
            tuple((lot.lot_id, taken) for lot, taken in allocations),
            key_id,
        )
    )


def settle(state: MarketState, command: SettleCall) -> None:
    name = "SettleCall"
    call = state.calls.get(command.call_id)
    if call is None:
        return state.reject(name, None, RejectReason.unknown_call)
    used = command.used_tokens
    if type(used) is not int or not 0 <= used <= state.config.max_call_tokens:
        return state.reject(name, call.account_id, RejectReason.invalid_amount)
    if not _valid_receipt(command, state.config.max_call_tokens):
        return state.reject(name, call.account_id, RejectReason.invalid_receipt)
    del state.calls[command.call_id]
    account = state.accounts[call.account_id]
    holding = account.holding(call.instrument_id)
    instrument_id = call.instrument_id
    ledger = state.ledger
    billed: list[tuple[LotId, int]] = []
    delivered_from: list[tuple[Lot, int]] = []
    to_bill = used
    touched: list[Lot] = []
    for lot, committed in call.allocations:
        lot.committed_tokens -= committed
        touched.append(lot)
        delivered = min(committed, to_bill)
        to_bill -= delivered
        if delivered:
            _deliver(state, account, holding, lot, delivered, holding.consumption_committed)
            billed.append((lot.lot_id, delivered))
            delivered_from.append((lot, delivered))
        if committed - delivered:
            ledger.post(
                instrument_id,
                holding.consumption_committed,
                holding.consumption_available,
                committed - delivered,
            )
    released = call.tokens - (used - to_bill)
    if to_bill:
        # Usage beyond the commitment: drawn from what the account still has, in draw order.
        now_ms = state.ts_ms
        for lot in sorted(holding.lots, key=Lot.draw_order):
            if not to_bill:
                break
            if lot.expired(now_ms) or not lot.available_tokens:
                continue
            delivered = min(lot.available_tokens, to_bill)
            to_bill -= delivered
            _deliver(state, account, holding, lot, delivered, holding.consumption_available)
            billed.append((lot.lot_id, delivered))
            delivered_from.append((lot, delivered))
            touched.append(lot)
    for lot in touched:
        if lot.expired(state.ts_ms):
            _forfeit(state, holding, lot)
        _drop_if_empty(state, holding, lot)
    if call.key_id is not None:
        # The commitment leaves the key's count; what was billed stays in it.
        state.key_tokens[call.key_id] += used - to_bill - call.tokens
    state.events.append(
        CallSettled(
            state.seq,
            state.ts_ms,
            call.call_id,
            call.account_id,
            call.instrument_id,
            used,
            used - to_bill,
            released,
            to_bill,
            tuple(billed),
            call.key_id,
            command.request_id,
            command.supplier_id,
            command.model,
            command.prompt_tokens,
            command.completion_tokens,
            command.ttft_ms,
            command.duration_ms,
            command.status,
            command.usage_estimated,
        )
    )
    settle_substitutions(state, call, command.supplier_id, delivered_from)


#: The longest id or name a receipt records (request id, supplier, model, key id).
MAX_RECEIPT_TEXT = 256
#: How a call may end.
CALL_STATUSES = frozenset({"ok", "failed", "cancelled"})
#: Longest duration a receipt records: a day, far beyond any call.
MAX_CALL_MS = 86_400_000


def _valid_receipt(command: SettleCall, max_tokens: int) -> bool:
    """Whether the receipt fields are of the right type and in range (the gateway builds
    them, so a wrong one is a bug there; refused rather than logged as it came)."""

    def text(value: object, optional: bool) -> bool:
        if value is None:
            return optional
        return type(value) is str and len(value) <= MAX_RECEIPT_TEXT

    def count(value: object, limit: int, optional: bool) -> bool:
        if value is None:
            return optional
        return type(value) is int and 0 <= value <= limit

    return (
        text(command.request_id, False)
        and text(command.supplier_id, True)
        and text(command.model, True)
        and count(command.prompt_tokens, max_tokens, False)
        and count(command.completion_tokens, max_tokens, False)
        and count(command.ttft_ms, MAX_CALL_MS, True)
        and count(command.duration_ms, MAX_CALL_MS, True)
        and command.status in CALL_STATUSES
        and type(command.usage_estimated) is bool
    )


def _deliver(
    state: MarketState, account: Account, holding: Holding, lot: Lot, tokens: int, source: str
) -> None:
    position = state.supplier_position(lot.supplier_id, lot.instrument_id)
    state.ledger.post(lot.instrument_id, source, position.issued_key, tokens)
    lot.remaining_tokens -= tokens
    assert lot.remaining_tokens >= lot.committed_tokens >= 0
    if lot.supplier_id == account.account_id:
        position.consumed_own_tokens += tokens
    else:
        position.delivered_tokens += tokens


def _forfeit(state: MarketState, holding: Holding, lot: Lot) -> None:
    """Forfeit a lot's uncommitted tokens to the operator (it has expired)."""
    tokens = lot.available_tokens
    if not tokens:
        return
    state.ledger.post(
        lot.instrument_id,
        holding.consumption_available,
        state.forfeited_key(lot.instrument_id),
        tokens,
    )
    lot.remaining_tokens -= tokens
    position = state.supplier_position(lot.supplier_id, lot.instrument_id)
    if lot.supplier_id == lot.account_id:
        position.consumed_own_tokens += tokens
    else:
        position.forfeited_tokens += tokens
    state.events.append(
        TokensForfeited(
            state.seq, state.ts_ms, lot.lot_id, lot.account_id, lot.instrument_id, tokens
        )
    )


def _drop_if_empty(state: MarketState, holding: Holding, lot: Lot) -> None:
    if lot.remaining_tokens == 0 and lot.lot_id in state.lots:
        del state.lots[lot.lot_id]
        holding.lots.remove(lot)


def expire(state: MarketState) -> None:
    """Forfeit the uncommitted tokens of every lot that has expired by now."""
    now_ms = state.ts_ms
    for lot in [lot for lot in state.lots.values() if lot.expired(now_ms)]:
        holding = state.accounts[lot.account_id].holding(lot.instrument_id)
        _forfeit(state, holding, lot)
        _drop_if_empty(state, holding, lot)


def sweep(state: MarketState, command: Sweep) -> None:
    """Move every account's bought units to consumption, cancelling its asks first.

    A supplier's own issued units stay in trading (only their asks are cancelled, when the
    supplier also holds bought units, since an ask's lock cannot tell which units it holds).
    """
    from gridmarket.core.matching import cancel  # the sweep is the one rule that cancels

    instrument = state.instruments.get(command.instrument_id)
    if instrument is None:
        return state.reject("Sweep", None, RejectReason.unknown_instrument)
    if not instrument.sweep_enabled:
        return state.reject("Sweep", None, RejectReason.sweep_disabled)
    state.last_sweep_ms[instrument.instrument_id] = state.ts_ms
    book = state.books[instrument.instrument_id]
    for account in list(state.accounts.values()):
        holding = account.holdings.get(instrument.instrument_id)
        if holding is None or all(b.supplier_id == account.account_id for b in holding.batches):
            continue
        for order in [o for o in book.asks.open_orders() if o.account_id == account.account_id]:
            cancel(state, order, CancelReason.sweep)
        own = [b for b in holding.batches if b.supplier_id == account.account_id]
        bought = [b for b in holding.batches if b.supplier_id != account.account_id]
        units = sum(b.units for b in bought)
        holding.batches.clear()
        holding.batches.extend(bought)
        holding.batches.extend(own)
        _move_to_consumption(state, account, holding, instrument.instrument_id, units)

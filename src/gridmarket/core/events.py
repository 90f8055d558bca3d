"""Events: what a command did, as immutable records (NamedTuples: cheap on the hot path).

Every event carries `seq` (the sequence number of the command that caused it) and `ts_ms` (that
command's timestamp), so each one can be audited alone. Balance changes are not events but
`Posting`s, returned beside the events. Events and postings are written to the store in the
same batch as their command.
"""

from typing import NamedTuple

from gridmarket.core.ids import AccountId, CallId, InstrumentId, LotId, OrderId, TradeId


class Posting(NamedTuple):
    """One double-entry movement: `amount` leaves `debit` and arrives in `credit`.

    Keys are `owner/asset/bucket` (e.g. `alice/usd/available`); `asset` is `usd` (micro-USD) or
    an instrument id (tokens).
    """

    seq: int
    asset: str
    debit: str
    credit: str
    amount: int


class Rejected(NamedTuple):
    """A command other than an order placement was refused; nothing changed."""

    seq: int
    ts_ms: int
    command: str
    account_id: str | None
    reason: str


class AccountCreated(NamedTuple):
    seq: int
    ts_ms: int
    account_id: AccountId
    is_supplier: bool
    auto_transfer: bool


class AutoTransferSet(NamedTuple):
    seq: int
    ts_ms: int
    account_id: AccountId
    auto_transfer: bool


class UsdMoved(NamedTuple):
    """A deposit, withdrawal or supplier payout (`kind`)."""

    seq: int
    ts_ms: int
    account_id: AccountId
    kind: str
    amount_usd_micros: int


class SupplierCapacitySet(NamedTuple):
    seq: int
    ts_ms: int
    account_id: AccountId
    instrument_id: InstrumentId
    capacity_tokens_per_min: int


class UnitsIssued(NamedTuple):
    seq: int
    ts_ms: int
    account_id: AccountId
    instrument_id: InstrumentId
    quantity_units: int


class UnitsTransferred(NamedTuple):
    """Units moved between an account's own accounts (`issuance`/`trading`/`consumption`)."""

    seq: int
    ts_ms: int
    account_id: AccountId
    instrument_id: InstrumentId
    from_account: str
    to_account: str
    quantity_units: int


class OrderAccepted(NamedTuple):
    seq: int
    ts_ms: int
    order_id: OrderId
    account_id: AccountId
    instrument_id: InstrumentId
    side: str
    order_type: str
    price_usd_micros: int | None
    quantity_units: int
    time_in_force: str
    post_only: bool
    client_order_id: str | None
    auto_transfer: bool
    locked_usd_micros: int


class OrderRejected(NamedTuple):
    seq: int
    ts_ms: int
    account_id: AccountId
    instrument_id: str
    client_order_id: str | None
    reason: str


class OrderAlreadyExists(NamedTuple):
    """A repeated `client_order_id` with the same parameters: the original order stands."""

    seq: int
    ts_ms: int
    order_id: OrderId
    account_id: AccountId
    client_order_id: str


class Trade(NamedTuple):
    """One match: at the maker's price, numbered per market by `market_seq`."""

    seq: int
    ts_ms: int
    trade_id: TradeId
    instrument_id: InstrumentId
    market_seq: int
    price_usd_micros: int
    quantity_units: int
    buyer_account_id: AccountId
    seller_account_id: AccountId
    maker_order_id: OrderId
    taker_order_id: OrderId
    taker_side: str
    buyer_fee_usd_micros: int
    seller_fee_usd_micros: int


class OrderCancelled(NamedTuple):
    seq: int
    ts_ms: int
    order_id: OrderId
    account_id: AccountId
    instrument_id: InstrumentId
    reason: str
    remaining_units: int


class OrderReplaced(NamedTuple):
    """A `ReplaceOrder` succeeded: `order_id` was cancelled (reason `replaced`) and
    `new_order_id` placed in its stead (its `OrderAccepted` follows this event)."""

    seq: int
    ts_ms: int
    order_id: OrderId
    new_order_id: OrderId
    account_id: AccountId
    instrument_id: InstrumentId


class OrderClosed(NamedTuple):
    """The unfilled remainder of a market/ioc/fok order, closed instead of resting."""

    seq: int
    ts_ms: int
    order_id: OrderId
    account_id: AccountId
    instrument_id: InstrumentId
    closure_reason: str
    remaining_units: int


class LotCreated(NamedTuple):
    seq: int
    ts_ms: int
    lot_id: LotId
    account_id: AccountId
    instrument_id: InstrumentId
    supplier_id: AccountId
    price_usd_micros: int
    tokens: int
    trade_ids: tuple[TradeId, ...]
    expires_at_ms: int | None


class TokensCommitted(NamedTuple):
    seq: int
    ts_ms: int
    call_id: CallId
    account_id: AccountId
    instrument_id: InstrumentId
    tokens: int
    #: (lot id, tokens) in the order they were drawn.
    allocations: tuple[tuple[LotId, int], ...]
    #: The consumption key the call is made with (None for calls outside the gateway).
    key_id: str | None = None


class CallSettled(NamedTuple):
    """A call ended: `billed` debited (committed first, then available), the rest released."""

    seq: int
    ts_ms: int
    call_id: CallId
    account_id: AccountId
    instrument_id: InstrumentId
    used_tokens: int
    billed_tokens: int
    released_tokens: int
    #: Usage beyond the commitment that even the available lots could not cover: flagged.
    unbilled_tokens: int
    #: (lot id, tokens billed) for the usage receipt.
    billed_lots: tuple[tuple[LotId, int], ...]
    #: The receipt: the consumption key (from the commit) and what `SettleCall` reported.
    key_id: str | None = None
    request_id: str = ""
    supplier_id: str | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: int | None = None
    duration_ms: int | None = None
    status: str = "ok"
    usage_estimated: bool = False


class SubstitutionSettled(NamedTuple):
    """A call drew tokens from a lot of `supplier_id` but `substitute_id` delivered them: the
    supplier paid the substitute `amount_usd_micros` = ceil(tokens × price_usd_micros ÷
    1,000,000), of which the operator paid `receivable_usd_micros` (what the supplier's
    available USD could not cover) and booked it as the supplier's receivable.

    `account_id` is the consumer whose call it was; `substitute_id` a supplier account or
    `operator`. Follows the call's `CallSettled`, one per lot substituted (see `substitution`).
    """

    seq: int
    ts_ms: int
    call_id: CallId
    account_id: AccountId
    instrument_id: InstrumentId
    lot_id: LotId
    supplier_id: AccountId
    substitute_id: AccountId
    tokens: int
    price_usd_micros: int
    amount_usd_micros: int
    receivable_usd_micros: int


class ReceivableSettled(NamedTuple):
    """A supplier paid `amount_usd_micros` of what it owes the operator for substitutions;
    `outstanding_usd_micros` is what it still owes (issuance is refused until it is 0)."""

    seq: int
    ts_ms: int
    account_id: AccountId
    amount_usd_micros: int
    outstanding_usd_micros: int


class TokensForfeited(NamedTuple):
    seq: int
    ts_ms: int
    lot_id: LotId
    account_id: AccountId
    instrument_id: InstrumentId
    tokens: int


Event = (
    Rejected
    | AccountCreated
    | AutoTransferSet
    | UsdMoved
    | SupplierCapacitySet
    | UnitsIssued
    | UnitsTransferred
    | OrderAccepted
    | OrderRejected
    | OrderAlreadyExists
    | Trade
    | OrderCancelled
    | OrderReplaced
    | OrderClosed
    | LotCreated
    | TokensCommitted
    | CallSettled
    | SubstitutionSettled
    | ReceivableSettled
    | TokensForfeited
)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        Rejected,
        AccountCreated,
        AutoTransferSet,
        UsdMoved,
        SupplierCapacitySet,
        UnitsIssued,
        UnitsTransferred,
        OrderAccepted,
        OrderRejected,
        OrderAlreadyExists,
        Trade,
        OrderCancelled,
        OrderReplaced,
        OrderClosed,
        LotCreated,
        TokensCommitted,
        CallSettled,
        SubstitutionSettled,
        ReceivableSettled,
        TokensForfeited,
    )
}

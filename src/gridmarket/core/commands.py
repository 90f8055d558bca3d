"""Commands: everything that can change the market's state, as immutable records.

The sequencer gives each command a sequence number and a timestamp and applies it to the core
(`Exchange.apply(command, seq, ts_ms)`); the stored command log replayed in order rebuilds the
state exactly. Commands carry only ints, strs, bools and None, so they serialise as they are.
Quantities are whole units, money micro-USD, tokens tokens.
"""

from typing import Literal, NamedTuple

from gridmarket.core.ids import AccountId, CallId, InstrumentId, OrderId

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["gtc", "ioc", "fok"]


class CreateAccount(NamedTuple):
    account_id: AccountId
    is_supplier: bool = False
    #: Move bought units straight to consumption on every fill (Auto Mode's default).
    auto_transfer: bool = False


class SetAutoTransfer(NamedTuple):
    account_id: AccountId
    auto_transfer: bool


class Deposit(NamedTuple):
    account_id: AccountId
    amount_usd_micros: int


class Withdraw(NamedTuple):
    account_id: AccountId
    amount_usd_micros: int


class SupplierPayout(NamedTuple):
    """A supplier takes its earnings out: a withdrawal that only suppliers may make."""

    account_id: AccountId
    amount_usd_micros: int


class SetSupplierCapacity(NamedTuple):
    """The qualified capacity that bounds a supplier's issuance on one instrument."""

    account_id: AccountId
    instrument_id: InstrumentId
    capacity_tokens_per_min: int


class IssueUnits(NamedTuple):
    account_id: AccountId
    instrument_id: InstrumentId
    quantity_units: int


class TransferIssuanceToTrading(NamedTuple):
    account_id: AccountId
    instrument_id: InstrumentId
    quantity_units: int


class PlaceOrder(NamedTuple):
    """Place an order; its id is the sequence number of this command.

    For a market order, `price_usd_micros` is optional and is the worst acceptable price.
    `auto_transfer` None means the account's setting.
    """

    account_id: AccountId
    instrument_id: InstrumentId
    side: Side
    order_type: OrderType
    quantity_units: int
    price_usd_micros: int | None = None
    time_in_force: TimeInForce = "gtc"
    post_only: bool = False
    client_order_id: str | None = None
    auto_transfer: bool | None = None


class CancelOrder(NamedTuple):
    account_id: AccountId
    order_id: OrderId


class ReplaceOrder(NamedTuple):
    """Cancel-replace one's open order in one command: a new price and/or quantity.

    The resting order is cancelled (reason `replaced`) and a new order placed in its stead,
    with a new id (this command's seq) and no time priority, matching as any new order does.
    Side, type, time in force, post-only, auto-transfer and `client_order_id` carry over.
    `quantity_units` is the new order's whole quantity, i.e. the new remaining quantity (what
    was filled before stays on the old order); None keeps the old order's remaining units.
    `price_usd_micros` None keeps the old price. If the new order would be refused, nothing
    changes and the command is rejected with the reason the new order would have got.
    """

    account_id: AccountId
    order_id: OrderId
    price_usd_micros: int | None = None
    quantity_units: int | None = None


class CancelAllOrders(NamedTuple):
    """Cancel every open order of an account, or only those in one market."""

    account_id: AccountId
    instrument_id: InstrumentId | None = None


class TransferToConsumption(NamedTuple):
    account_id: AccountId
    instrument_id: InstrumentId
    quantity_units: int


class TransferToTrading(NamedTuple):
    """Consumption to trading: always refused (units in consumption cannot be resold)."""

    account_id: AccountId
    instrument_id: InstrumentId
    quantity_units: int


class CommitTokens(NamedTuple):
    """Hold tokens for a call in flight, soonest-expiring lot first.

    `key_id` names the consumption key the call is made with; when `key_spend_cap_tokens` is
    set, the key's billed plus committed tokens may not exceed it after this commit (the cap
    is the key's setting, passed in by the gateway, so the core needs no key registry).
    """

    call_id: CallId
    account_id: AccountId
    instrument_id: InstrumentId
    tokens: int
    key_id: str | None = None
    key_spend_cap_tokens: int | None = None


class SettleCall(NamedTuple):
    """End a call: debit `used_tokens`, release the rest. A failed call settles 0.

    `supplier_id` names who delivered the call (a supplier account, or `operator` for the
    operator's own endpoints; None: not known). When it is not the supplier whose units funded
    a lot the call drew on, that supplier pays the deliverer (`substitution`).

    The other fields are the call's usage receipt, recorded as they are in `CallSettled` (so
    the receipt is as durable as the debit it explains): which request, supplier and model,
    the tokens in and out the supplier reported (or the gateway counted, `usage_estimated`),
    time to first token, duration, and how the call ended (`status`: `ok`, `failed`,
    `cancelled`).
    """

    call_id: CallId
    used_tokens: int
    request_id: str = ""
    supplier_id: str | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: int | None = None
    duration_ms: int | None = None
    status: str = "ok"
    usage_estimated: bool = False


class SettleReceivable(NamedTuple):
    """Pay what a supplier owes the operator for substitutions (see `receivables`) from its
    available USD: all of it, or as much as it has."""

    account_id: AccountId


class ExpireLots(NamedTuple):
    """Forfeit the uncommitted tokens of every lot expired at the command's timestamp."""


class Sweep(NamedTuple):
    """The scheduled sweep of one instrument: bought units (asks cancelled first) to consumption."""

    instrument_id: InstrumentId


Command = (
    CreateAccount
    | SetAutoTransfer
    | Deposit
    | Withdraw
    | SupplierPayout
    | SetSupplierCapacity
    | IssueUnits
    | TransferIssuanceToTrading
    | PlaceOrder
    | CancelOrder
    | ReplaceOrder
    | CancelAllOrders
    | TransferToConsumption
    | TransferToTrading
    | CommitTokens
    | SettleCall
    | SettleReceivable
    | ExpireLots
    | Sweep
)

COMMAND_TYPES: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        CreateAccount,
        SetAutoTransfer,
        Deposit,
        Withdraw,
        SupplierPayout,
        SetSupplierCapacity,
        IssueUnits,
        TransferIssuanceToTrading,
        PlaceOrder,
        CancelOrder,
        ReplaceOrder,
        CancelAllOrders,
        TransferToConsumption,
        TransferToTrading,
        CommitTokens,
        SettleCall,
        SettleReceivable,
        ExpireLots,
        Sweep,
    )
}

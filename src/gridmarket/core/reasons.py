"""Named outcomes: why a command was refused, why an order closed or was cancelled.

A refused command changes nothing and produces one `Rejected`/`OrderRejected` event carrying
one of these. Checks run in a fixed order (see `matching.place_order`), so the same bad
command always gets the same reason.
"""

from enum import StrEnum


class RejectReason(StrEnum):
    unknown_account = "unknown_account"
    invalid_account_id = "invalid_account_id"
    account_exists = "account_exists"
    unknown_instrument = "unknown_instrument"
    invalid_amount = "invalid_amount"
    invalid_side = "invalid_side"
    invalid_order_type = "invalid_order_type"
    invalid_time_in_force = "invalid_time_in_force"
    invalid_quantity = "invalid_quantity"
    quantity_off_increment = "quantity_off_increment"
    price_required = "price_required"
    invalid_price = "invalid_price"
    price_off_tick = "price_off_tick"
    post_only_not_limit = "post_only_not_limit"
    client_order_id_conflict = "client_order_id_conflict"
    too_many_open_orders = "too_many_open_orders"
    price_out_of_band = "price_out_of_band"
    post_only_would_take = "post_only_would_take"
    insufficient_funds = "insufficient_funds"
    insufficient_units = "insufficient_units"
    unknown_order = "unknown_order"
    order_not_open = "order_not_open"
    #: A `ReplaceOrder` that changes neither price nor quantity.
    nothing_to_replace = "nothing_to_replace"
    not_a_supplier = "not_a_supplier"
    capacity_exceeded = "capacity_exceeded"
    sweep_disabled = "sweep_disabled"
    consumption_to_trading_refused = "consumption_to_trading_refused"
    insufficient_tokens = "insufficient_tokens"
    call_exists = "call_exists"
    unknown_call = "unknown_call"
    #: The consumption key's spend cap would be exceeded by this commitment.
    spend_cap_reached = "spend_cap_reached"
    #: The supplier owes the operator for substitutions it paid: no issuance, no USD out.
    receivable_outstanding = "receivable_outstanding"
    #: A `SettleReceivable` for an account that owes nothing.
    no_receivable = "no_receivable"
    #: A `SettleCall` whose receipt fields have the wrong type, sign or size.
    invalid_receipt = "invalid_receipt"


class CancelReason(StrEnum):
    requested = "requested"
    self_trade_prevention = "self_trade_prevention"
    sweep = "sweep"
    #: Cancelled by a `ReplaceOrder`, which placed a new order in its stead.
    replaced = "replaced"


class ClosureReason(StrEnum):
    """Why the unfilled remainder of a market, ioc or fok order was closed instead of resting."""

    no_liquidity = "no_liquidity"
    immediate_or_cancel = "immediate_or_cancel"
    fill_or_kill = "fill_or_kill"
    price_limit = "price_limit"
    price_band = "price_band"
    insufficient_funds = "insufficient_funds"

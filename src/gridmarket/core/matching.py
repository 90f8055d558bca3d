"""Placing and cancelling orders: validation, price-time matching, fills, fees and holds.

Checks run in this order and the first failure rejects the order with a `RejectReason`,
changing nothing: account, instrument, side, type, time in force, quantity (range, then
increment), price (required for limits, positive, on the tick), post-only only on gtc limits,
`client_order_id` (same parameters: the original order stands; others: conflict), open-order
limit (orders that may rest), price band (limits; none before the market's first trade),
post-only would take, then funds (a limit buy locks notional + fee reserve at the higher of
the maker/taker rates, rounded up; a sell locks its units; a market buy needs some USD).

Matching walks the opposite side best price first, oldest first at a price, and trades at the
maker's price. Self-trade prevention cancels the resting order of the same account. A market
order never rests: it stops at its worst price (`price`), at the price band around the last
trade price before it, when the buyer's USD runs out, or when the book is empty, and its
remainder is closed with that reason; ioc remainders and unfillable fok orders are closed too.

A `ReplaceOrder` is a cancel plus a place in one command (`replace_order`): the new order is
checked first as `place_order` would check it once the old order's hold were released, and
only if it would be accepted is the old one cancelled (reason `replaced`) and the new one
placed; otherwise the command is rejected with that reason and nothing changes.
Fees are charged as the running ceiling of notional × bps / 10,000 over an order's fills, so
the sum of a buy's fees never exceeds what it reserved. What better prices free from a buy's
hold is released at each fill.
"""

from gridmarket.core.accounts import Account, Batch
from gridmarket.core.book import Book, Level, Side
from gridmarket.core.commands import CancelAllOrders, CancelOrder, PlaceOrder, ReplaceOrder
from gridmarket.core.events import (
    OrderAccepted,
    OrderAlreadyExists,
    OrderCancelled,
    OrderClosed,
    OrderRejected,
    OrderReplaced,
    Trade,
)
from gridmarket.core.ids import OrderId, TradeId
from gridmarket.core.instruments import Instrument
from gridmarket.core.ledger import USD
from gridmarket.core.lots import add_lots
from gridmarket.core.orders import CANCELLED, CLOSED, FILLED, PARTIALLY_FILLED, Order
from gridmarket.core.reasons import CancelReason, ClosureReason, RejectReason
from gridmarket.core.state import MarketState
from gridmarket.core.supply import take_units
from gridmarket.core.units import BPS_DENOMINATOR, TOKENS_PER_UNIT, ceil_div

MAX_PRICE_USD_MICROS = 10**12
# Hot-path events are built with tuple.__new__: a NamedTuple's own __new__ is a Python-level
# function that costs about three times as much (see ledger.py).
_new_record = tuple.__new__
_SIDES = ("buy", "sell")
_ORDER_TYPES = ("limit", "market")
_TIMES_IN_FORCE = ("gtc", "ioc", "fok")


def out_of_band(price_usd_micros: int, reference_usd_micros: int, band_bps: int) -> bool:
    return (
        abs(price_usd_micros - reference_usd_micros) * BPS_DENOMINATOR
        > reference_usd_micros * band_bps
    )


def _reject(state: MarketState, command: PlaceOrder, reason: RejectReason) -> None:
    state.events.append(
        OrderRejected(
            state.seq,
            state.ts_ms,
            command.account_id,
            str(command.instrument_id),
            command.client_order_id,
            reason,
        )
    )


def _validate(state: MarketState, command: PlaceOrder) -> RejectReason | None:
    """The request's own checks (no state beyond the catalogue)."""
    instrument = state.instruments.get(command.instrument_id)
    if instrument is None:
        return RejectReason.unknown_instrument
    if command.side not in _SIDES:
        return RejectReason.invalid_side
    if command.order_type not in _ORDER_TYPES:
        return RejectReason.invalid_order_type
    if command.time_in_force not in _TIMES_IN_FORCE:
        return RejectReason.invalid_time_in_force
    quantity = command.quantity_units
    if (
        type(quantity) is not int
        or quantity < instrument.min_quantity_units
        or quantity > instrument.max_quantity_units
    ):
        return RejectReason.invalid_quantity
    if quantity % instrument.quantity_increment_units:
        return RejectReason.quantity_off_increment
    price = command.price_usd_micros
    if price is None:
        if command.order_type == "limit":
            return RejectReason.price_required
    elif type(price) is not int or not 0 < price <= MAX_PRICE_USD_MICROS:
        return RejectReason.invalid_price
    elif price % instrument.price_tick_usd_micros:
        return RejectReason.price_off_tick
    if command.post_only and (command.order_type != "limit" or command.time_in_force != "gtc"):
        return RejectReason.post_only_not_limit
    return None


def place_order(state: MarketState, command: PlaceOrder) -> None:
    account = state.accounts.get(command.account_id)
    if account is None:
        return _reject(state, command, RejectReason.unknown_account)
    invalid = _validate(state, command)
    if invalid is not None:
        return _reject(state, command, invalid)
    instrument = state.instruments[command.instrument_id]
    client_order_id = command.client_order_id
    auto_transfer = (
        account.auto_transfer if command.auto_transfer is None else bool(command.auto_transfer)
    )
    if client_order_id is not None and client_order_id in account.client_orders:
        existing = state.orders[account.client_orders[client_order_id]]
        if not existing.same_request(
            command.instrument_id,
            command.side,
            command.order_type,
            command.price_usd_micros,
            command.quantity_units,
            command.time_in_force,
            command.post_only,
            auto_transfer,
        ):
            return _reject(state, command, RejectReason.client_order_id_conflict)
        state.events.append(
            OrderAlreadyExists(
                state.seq, state.ts_ms, existing.order_id, account.account_id, client_order_id
            )
        )
        return None
    is_buy = command.side == "buy"
    is_limit = command.order_type == "limit"
    rests = is_limit and command.time_in_force == "gtc"
    if rests and len(account.open_order_ids) >= state.config.max_open_orders_per_account:
        return _reject(state, command, RejectReason.too_many_open_orders)
    book = state.books[command.instrument_id]
    price = command.price_usd_micros
    #: The limit price (None for market orders, whose optional price is only a worst price).
    limit_price = price if is_limit else None
    last_price = book.last_price_usd_micros
    if (
        limit_price is not None
        and last_price is not None
        and out_of_band(limit_price, last_price, instrument.price_band_bps)
    ):
        return _reject(state, command, RejectReason.price_out_of_band)
    if command.post_only:
        assert limit_price is not None  # _validate: post_only only on gtc limits
        best = book.opposite(is_buy).best()
        if best is not None and (
            best.price_usd_micros <= limit_price if is_buy else best.price_usd_micros >= limit_price
        ):
            return _reject(state, command, RejectReason.post_only_would_take)
    ledger = state.ledger
    holding = account.holdings.get(command.instrument_id)  # a refusal must not create one
    quantity = command.quantity_units
    lock_usd_micros = 0
    if is_buy:
        available = ledger.balances.get(account.usd_available, 0)
        if limit_price is not None:
            notional = limit_price * quantity
            lock_usd_micros = notional + ceil_div(
                notional * instrument.lock_fee_bps, BPS_DENOMINATOR
            )
            if available < lock_usd_micros:
                return _reject(state, command, RejectReason.insufficient_funds)
        elif available <= 0:
            return _reject(state, command, RejectReason.insufficient_funds)
    elif (
        holding is None
        or ledger.balances.get(holding.trading_available, 0) < quantity * TOKENS_PER_UNIT
    ):
        return _reject(state, command, RejectReason.insufficient_units)

    seq = state.seq
    order = Order(
        OrderId(seq),
        account.account_id,
        command.instrument_id,
        command.side,
        command.order_type,
        price,
        quantity,
        command.time_in_force,
        bool(command.post_only),
        client_order_id,
        auto_transfer,
        state.ts_ms,
    )
    state.orders[seq] = order
    if client_order_id is not None:
        account.client_orders[client_order_id] = seq
    if is_buy:
        if lock_usd_micros:
            ledger.post(USD, account.usd_available, account.usd_locked, lock_usd_micros)
            order.locked_usd_micros = lock_usd_micros
    else:
        assert holding is not None
        ledger.post(
            command.instrument_id,
            holding.trading_available,
            holding.trading_locked,
            quantity * TOKENS_PER_UNIT,
        )
    state.events.append(
        _new_record(
            OrderAccepted,
            (
                seq,
                state.ts_ms,
                order.order_id,
                account.account_id,
                command.instrument_id,
                command.side,
                command.order_type,
                price,
                quantity,
                command.time_in_force,
                order.post_only,
                client_order_id,
                auto_transfer,
                lock_usd_micros,
            ),
        )
    )
    if command.time_in_force == "fok" and not _fillable(state, book, order, instrument):
        return _close(state, order, ClosureReason.fill_or_kill)
    stopped = _match(state, book, order, instrument)
    if order.remaining_units:
        if rests:
            book.side_for(is_buy).add(order)
            account.open_order_ids[seq] = None
        elif is_limit:
            _close(state, order, ClosureReason.immediate_or_cancel)
        else:
            _close(state, order, stopped or ClosureReason.no_liquidity)
    return None


def _affordable_units(
    order: Order, price_usd_micros: int, units: int, available_usd_micros: int, fee_bps: int
) -> int:
    """The most units (≤ `units`) a market buy can pay for at this price, fee included."""

    def cost(n: int) -> int:
        notional = n * price_usd_micros
        fee = ceil_div(order.fee_numerator + notional * fee_bps, BPS_DENOMINATOR)
        return notional + fee - order.fee_paid_usd_micros

    n = min(
        units,
        available_usd_micros * BPS_DENOMINATOR // (price_usd_micros * (BPS_DENOMINATOR + fee_bps)),
    )
    while n < units and cost(n + 1) <= available_usd_micros:
        n += 1
    while n > 0 and cost(n) > available_usd_micros:
        n -= 1
    return n


def _crosses(order: Order, price_usd_micros: int) -> bool:
    """Whether the order's own limit (or worst price) admits trading at this price."""
    limit = order.price_usd_micros
    if limit is None:
        return True
    return price_usd_micros <= limit if order.is_buy else price_usd_micros >= limit


def _match(state: MarketState, book: Book, order: Order, instrument: Instrument) -> str | None:
    """Trade the order against the book; return why it stopped early, if it did."""
    opposite = book.opposite(order.is_buy)
    is_market = order.order_type == "market"
    reference = book.last_price_usd_micros
    band_bps = instrument.price_band_bps
    market_buy = is_market and order.is_buy
    while order.remaining_units:
        level = opposite.best()
        if level is None:
            return ClosureReason.no_liquidity
        price = level.price_usd_micros
        if not _crosses(order, price):
            return ClosureReason.price_limit
        if is_market and reference is not None and out_of_band(price, reference, band_bps):
            return ClosureReason.price_band
        maker = level.front()
        assert maker is not None, "a level with open units has a live order"
        if maker.account_id == order.account_id:
            cancel(state, maker, CancelReason.self_trade_prevention)
            continue
        units = min(order.remaining_units, maker.remaining_units)
        if market_buy:
            available = state.ledger.balances.get(state.accounts[order.account_id].usd_available, 0)
            units = _affordable_units(order, price, units, available, instrument.taker_fee_bps)
            if not units:
                return ClosureReason.insufficient_funds
        _trade(state, book, opposite, level, order, maker, units, instrument)
    return None


def _fillable(state: MarketState, book: Book, order: Order, instrument: Instrument) -> bool:
    """Whether a fok order would fill completely (own resting orders don't count)."""
    opposite = book.opposite(order.is_buy)
    needed = order.remaining_units
    reference = book.last_price_usd_micros
    is_market = order.order_type == "market"
    budget = None
    if is_market and order.is_buy:
        budget = state.ledger.balances.get(state.accounts[order.account_id].usd_available, 0)
    cost_numerator = 0
    for price, _units in opposite.depth():
        if not _crosses(order, price):
            return False
        if (
            is_market
            and reference is not None
            and out_of_band(price, reference, instrument.price_band_bps)
        ):
            return False
        for maker in opposite.levels[price].orders:
            if not maker.remaining_units or maker.status not in ("active", "partially_filled"):
                continue
            if maker.account_id == order.account_id:
                continue
            units = min(needed, maker.remaining_units)
            needed -= units
            cost_numerator += units * price
            if not needed:
                if budget is None:
                    return True
                fee = ceil_div(cost_numerator * instrument.taker_fee_bps, BPS_DENOMINATOR)
                return cost_numerator + fee <= budget
    return False


def _charge_fee(order: Order, notional_usd_micros: int, fee_bps: int) -> int:
    if not fee_bps:
        return 0
    order.fee_numerator += notional_usd_micros * fee_bps
    paid = ceil_div(order.fee_numerator, BPS_DENOMINATOR)
    fee = paid - order.fee_paid_usd_micros
    order.fee_paid_usd_micros = paid
    return fee


def _fill(order: Order, units: int, notional_usd_micros: int, ts_ms: int) -> None:
    order.remaining_units -= units
    order.filled_units += units
    order.filled_notional_usd_micros += notional_usd_micros
    order.transition(PARTIALLY_FILLED if order.remaining_units else FILLED, ts_ms)


def _trade(
    state: MarketState,
    book: Book,
    opposite: Side,
    level: Level,
    taker: Order,
    maker: Order,
    units: int,
    instrument: Instrument,
) -> None:
    price = maker.price_usd_micros
    assert price is not None
    accounts = state.accounts
    ledger = state.ledger
    post = ledger.post
    instrument_id = instrument.instrument_id
    trade_id = TradeId(state.next_trade_id)
    state.next_trade_id += 1
    book.market_seq += 1
    book.last_price_usd_micros = price
    notional = price * units
    if taker.is_buy:
        buy, sell = taker, maker
        buyer_fee = _charge_fee(buy, notional, instrument.taker_fee_bps)
        seller_fee = _charge_fee(sell, notional, instrument.maker_fee_bps)
    else:
        buy, sell = maker, taker
        buyer_fee = _charge_fee(buy, notional, instrument.maker_fee_bps)
        seller_fee = _charge_fee(sell, notional, instrument.taker_fee_bps)
    buyer = accounts[buy.account_id]
    seller = accounts[sell.account_id]
    state.events.append(
        _new_record(
            Trade,
            (
                state.seq,
                state.ts_ms,
                trade_id,
                instrument_id,
                book.market_seq,
                price,
                units,
                buyer.account_id,
                seller.account_id,
                maker.order_id,
                taker.order_id,
                taker.side,
                buyer_fee,
                seller_fee,
            ),
        )
    )

    # USD: the buyer pays notional + its fee (from its hold, or available for a market buy);
    # the seller receives notional and pays its fee from it.
    is_limit_buy = buy.order_type == "limit"
    source = buyer.usd_locked if is_limit_buy else buyer.usd_available
    post(USD, source, seller.usd_available, notional)
    if buyer_fee:
        post(USD, source, state.fees_key, buyer_fee)
    if seller_fee:
        post(USD, seller.usd_available, state.fees_key, seller_fee)
    if is_limit_buy:
        limit = buy.price_usd_micros
        assert limit is not None
        buy.locked_usd_micros -= notional + buyer_fee
        left = buy.remaining_units - units
        still_needed = left * limit + (
            ceil_div(buy.fee_numerator + left * limit * instrument.lock_fee_bps, BPS_DENOMINATOR)
            - buy.fee_paid_usd_micros
        )
        release = buy.locked_usd_micros - still_needed
        assert release >= 0, (buy.order_id, release)
        if release:
            post(USD, buyer.usd_locked, buyer.usd_available, release)
        buy.locked_usd_micros = still_needed

    # Units: from the seller's hold, FIFO by supplier, to the buyer's trading or consumption.
    tokens = units * TOKENS_PER_UNIT
    seller_holding = seller.holdings.get(instrument_id) or seller.holding(instrument_id)
    buyer_holding = buyer.holdings.get(instrument_id) or buyer.holding(instrument_id)
    chunks = take_units(
        state, seller_holding, seller.account_id, instrument_id, units, buyer.account_id
    )
    if buy.auto_transfer:
        post(
            instrument_id,
            seller_holding.trading_locked,
            buyer_holding.consumption_available,
            tokens,
        )
        add_lots(
            state,
            buyer.account_id,
            buyer_holding,
            instrument_id,
            [(supplier, price, chunk, (trade_id,)) for supplier, _, chunk, _ in chunks],
        )
    else:
        post(instrument_id, seller_holding.trading_locked, buyer_holding.trading_available, tokens)
        batches = buyer_holding.batches
        for supplier, _, chunk, _ in chunks:
            batches.append(Batch(supplier, price, chunk, (trade_id,)))

    ts_ms = state.ts_ms
    _fill(taker, units, notional, ts_ms)
    _fill(maker, units, notional, ts_ms)
    opposite.reduce(level, units)
    if not maker.remaining_units:
        del accounts[maker.account_id].open_order_ids[maker.order_id]


def _release_hold(state: MarketState, account: Account, order: Order) -> None:
    if order.is_buy:
        if order.locked_usd_micros:
            state.ledger.post(
                USD, account.usd_locked, account.usd_available, order.locked_usd_micros
            )
            order.locked_usd_micros = 0
    else:
        holding = account.holding(order.instrument_id)
        state.ledger.post(
            order.instrument_id,
            holding.trading_locked,
            holding.trading_available,
            order.remaining_units * TOKENS_PER_UNIT,
        )


def _close(state: MarketState, order: Order, reason: str) -> None:
    """Close the unfilled remainder of an order that never rested."""
    _release_hold(state, state.accounts[order.account_id], order)
    order.transition(CLOSED, state.ts_ms)
    order.closure_reason = str(reason)
    state.events.append(
        OrderClosed(
            state.seq,
            state.ts_ms,
            order.order_id,
            order.account_id,
            order.instrument_id,
            reason,
            order.remaining_units,
        )
    )


def cancel(state: MarketState, order: Order, reason: str) -> None:
    """Take a resting order off the book and release its hold."""
    account = state.accounts[order.account_id]
    side = state.books[order.instrument_id].side_for(order.is_buy)
    price = order.price_usd_micros
    assert price is not None
    side.reduce(side.levels[price], order.remaining_units)
    _release_hold(state, account, order)
    order.transition(CANCELLED, state.ts_ms)
    order.closure_reason = str(reason)
    del account.open_order_ids[order.order_id]
    state.events.append(
        OrderCancelled(
            state.seq,
            state.ts_ms,
            order.order_id,
            order.account_id,
            order.instrument_id,
            reason,
            order.remaining_units,
        )
    )


def cancel_order(state: MarketState, command: CancelOrder) -> None:
    order = state.orders.get(command.order_id)
    if order is None or order.account_id != command.account_id:
        # Another account's order is reported as unknown: its existence is not disclosed.
        return state.reject("CancelOrder", command.account_id, RejectReason.unknown_order)
    if not order.is_open:
        return state.reject("CancelOrder", command.account_id, RejectReason.order_not_open)
    cancel(state, order, CancelReason.requested)


def cancel_all(state: MarketState, command: CancelAllOrders) -> None:
    account = state.accounts.get(command.account_id)
    if account is None:
        return state.reject("CancelAllOrders", command.account_id, RejectReason.unknown_account)
    if command.instrument_id is not None and command.instrument_id not in state.instruments:
        return state.reject("CancelAllOrders", command.account_id, RejectReason.unknown_instrument)
    for order_id in list(account.open_order_ids):
        order = state.orders[order_id]
        if command.instrument_id is None or order.instrument_id == command.instrument_id:
            cancel(state, order, CancelReason.requested)


def _replace_refusal(
    state: MarketState, account: Account, old: Order, new: PlaceOrder
) -> RejectReason | None:
    """What `place_order` would refuse `new` for once `old` is cancelled (None: accepted).

    Mirrors `place_order`'s checks after `_validate`, in its order; `new` is a gtc limit
    (only those rest) whose client order id is moved over from `old`, so it has no conflict.
    """
    instrument = state.instruments[new.instrument_id]
    book = state.books[new.instrument_id]
    price = new.price_usd_micros
    assert type(price) is int  # _validate: a limit has a valid price
    quantity = new.quantity_units
    # `old` is still counted among the open orders here; the new one takes its place.
    if len(account.open_order_ids) - 1 >= state.config.max_open_orders_per_account:
        return RejectReason.too_many_open_orders
    last_price = book.last_price_usd_micros
    if last_price is not None and out_of_band(price, last_price, instrument.price_band_bps):
        return RejectReason.price_out_of_band
    is_buy = new.side == "buy"
    if new.post_only:
        best = book.opposite(is_buy).best()
        if best is not None and (
            best.price_usd_micros <= price if is_buy else best.price_usd_micros >= price
        ):
            return RejectReason.post_only_would_take
    balances = state.ledger.balances
    if is_buy:
        notional = price * quantity
        lock_usd_micros = notional + ceil_div(notional * instrument.lock_fee_bps, BPS_DENOMINATOR)
        if balances.get(account.usd_available, 0) + old.locked_usd_micros < lock_usd_micros:
            return RejectReason.insufficient_funds
    else:
        holding = account.holdings[new.instrument_id]  # the old ask locked units in it
        freed = old.remaining_units * TOKENS_PER_UNIT
        if balances.get(holding.trading_available, 0) + freed < quantity * TOKENS_PER_UNIT:
            return RejectReason.insufficient_units
    return None


def replace_order(state: MarketState, command: ReplaceOrder) -> None:
    """Cancel one's open order and place its replacement, atomically (module docstring)."""
    old = state.orders.get(command.order_id)
    if old is None or old.account_id != command.account_id:
        return state.reject("ReplaceOrder", command.account_id, RejectReason.unknown_order)
    if not old.is_open:
        return state.reject("ReplaceOrder", command.account_id, RejectReason.order_not_open)
    if command.price_usd_micros is None and command.quantity_units is None:
        return state.reject("ReplaceOrder", command.account_id, RejectReason.nothing_to_replace)
    account = state.accounts[old.account_id]
    new = PlaceOrder(
        account.account_id,
        old.instrument_id,
        "buy" if old.is_buy else "sell",
        "limit",
        old.remaining_units if command.quantity_units is None else command.quantity_units,
        old.price_usd_micros if command.price_usd_micros is None else command.price_usd_micros,
        "gtc",
        old.post_only,
        old.client_order_id,
        old.auto_transfer,
    )
    assert old.order_type == "limit" and old.time_in_force == "gtc"  # only these rest
    refusal = _validate(state, new) or _replace_refusal(state, account, old, new)
    if refusal is not None:
        return state.reject("ReplaceOrder", command.account_id, refusal)
    cancel(state, old, CancelReason.replaced)
    if old.client_order_id is not None:
        # The client order id moves to the new order (place_order maps it again).
        del account.client_orders[old.client_order_id]
    new_order_id = OrderId(state.seq)
    state.events.append(
        OrderReplaced(
            state.seq,
            state.ts_ms,
            old.order_id,
            new_order_id,
            account.account_id,
            old.instrument_id,
        )
    )
    place_order(state, new)
    assert new_order_id in state.orders, "replace_order's checks must mirror place_order's"
    return None

"""A deliberately simple model of the exchange, to check the core against.

Same rules as `gridmarket.core` (DESIGN sections 4-7, the check order in `matching`'s
docstring), none of its machinery: the book is one plain list of resting orders, sorted by
(price priority, arrival) every time it is read; no price levels, no lazy deletion, no ledger
postings, just per-account numbers (USD available/locked in micro-USD, trading units
available/locked, issuance units, consumption lots in tokens). `apply` returns the events the
core must emit (the core's own event records, in order), and `balances` renders the model as
the core's ledger keys, so that both can be compared for equality.

Clarity over speed: it deep-copies itself to answer "would this fill-or-kill order fill?".
"""

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gridmarket.core import commands as c
from gridmarket.core import events as e
from gridmarket.core.state import ExchangeConfig

TOKENS = 1_000_000  # tokens per unit
BPS = 10_000
MAX_PRICE = 10**12


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def out_of_band(price: int, reference: int, band_bps: int) -> bool:
    return abs(price - reference) * BPS > reference * band_bps


@dataclass
class Order:
    order_id: int
    account_id: str
    instrument_id: str
    side: str
    order_type: str
    price: int | None
    quantity: int
    time_in_force: str
    post_only: bool
    client_order_id: str | None
    auto_transfer: bool
    remaining: int = 0
    status: str = "active"
    hold_usd: int = 0  # buy limit: USD still locked for this order
    fee_numerator: int = 0  # Σ notional × bps over fills; fees are its running ceiling
    fee_paid: int = 0

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"

    def request(self) -> tuple[Any, ...]:
        return (
            self.instrument_id,
            self.side,
            self.order_type,
            self.price,
            self.quantity,
            self.time_in_force,
            self.post_only,
            self.auto_transfer,
        )

    def ids(self) -> tuple[int, str, str]:
        return (self.order_id, self.account_id, self.instrument_id)

    def priority(self) -> tuple[int, int]:
        """Better price first, then earlier arrival (order id = the placing command's seq)."""
        assert self.price is not None
        return (-self.price if self.is_buy else self.price, self.order_id)


@dataclass
class Batch:
    """Trading units from one supplier, bought at one price (FIFO queue per holding)."""

    supplier_id: str
    price: int
    units: int
    trade_ids: tuple[int, ...]


@dataclass
class Lot:
    lot_id: int
    account_id: str
    instrument_id: str
    supplier_id: str
    price: int
    remaining: int  # tokens not yet delivered or forfeited
    trade_ids: tuple[int, ...]
    expires_at: int | None
    committed: int = 0

    @property
    def available(self) -> int:
        return self.remaining - self.committed

    def expired(self, now: int) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def draw_order(self) -> tuple[bool, int, int]:
        return (self.expires_at is None, self.expires_at or 0, self.lot_id)


@dataclass
class Call:
    account_id: str
    instrument_id: str
    tokens: int
    allocations: list[tuple[Lot, int]]
    key_id: str | None = None


@dataclass
class Account:
    is_supplier: bool
    auto_transfer: bool
    usd: int = 0
    usd_locked: int = 0
    issuance: Counter[str] = field(default_factory=Counter)  # units
    batches: dict[str, list[Batch]] = field(default_factory=dict)  # trading units, FIFO
    units_locked: Counter[str] = field(default_factory=Counter)  # in open asks
    capacity: Counter[str] = field(default_factory=Counter)  # tokens/min
    client_orders: dict[str, int] = field(default_factory=dict)
    owes: int = 0  # micro-USD owed to the operator for substitutions it paid

    def trading_units(self, instrument_id: str) -> int:
        return sum(b.units for b in self.batches.get(instrument_id, []))

    def units_available(self, instrument_id: str) -> int:
        return self.trading_units(instrument_id) - self.units_locked[instrument_id]


class Reference:
    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config
        self.instruments = config.instruments
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, Order] = {}
        self.resting: list[Order] = []
        self.last_price: dict[str, int] = {}
        self.market_seq: Counter[str] = Counter()
        self.next_trade_id = 1
        self.next_lot_id = 1
        self.lots: list[Lot] = []
        self.calls: dict[str, Call] = {}
        #: Tokens billed to each consumption key so far (in-flight calls are counted from
        #: `calls` when a cap is checked).
        self.key_billed: Counter[str] = Counter()
        self.net_deposits = 0
        self.fees = 0
        self.substitutions = 0  # paid to the operator for deliveries by its own endpoints
        self.issued: Counter[tuple[str, str]] = Counter()  # (supplier, instrument): tokens
        self.delivered: Counter[tuple[str, str]] = Counter()  # back to the supplier's contra
        self.gone: Counter[tuple[str, str]] = Counter()  # delivered or forfeited, anyone's
        self.forfeited: Counter[str] = Counter()
        self.seq = 0
        self.now = 0
        self.out: list[e.Event] = []

    # The book ------------------------------------------------------------------------------

    def queue(self, instrument_id: str, side: str) -> list[Order]:
        """Open orders of one side of one book, best first."""
        orders = [o for o in self.resting if o.instrument_id == instrument_id and o.side == side]
        return sorted(orders, key=Order.priority)

    def open_orders(self, account_id: str) -> list[Order]:
        return sorted(
            (o for o in self.resting if o.account_id == account_id), key=lambda o: o.order_id
        )

    # Dispatch --------------------------------------------------------------------------------

    def apply(self, command: c.Command, seq: int, ts_ms: int) -> list[e.Event]:
        self.seq, self.now, self.out = seq, ts_ms, []
        getattr(self, "_" + type(command).__name__)(command, seq)
        return self.out

    def _emit(self, event: Any, *fields: Any) -> None:
        self.out.append(event(self.seq, self.now, *fields))

    def _reject(self, command: str, account_id: str | None, reason: str) -> None:
        self._emit(e.Rejected, command, account_id, reason)

    def _CreateAccount(self, cmd: c.CreateAccount, seq: int) -> None:
        a = cmd.account_id
        if type(a) is not str or not 0 < len(a) <= 64 or "/" in a or a in ("operator", "external"):
            return self._reject("CreateAccount", None, "invalid_account_id")
        if a in self.accounts:
            return self._reject("CreateAccount", a, "account_exists")
        self.accounts[a] = Account(bool(cmd.is_supplier), bool(cmd.auto_transfer))
        self._emit(e.AccountCreated, a, bool(cmd.is_supplier), bool(cmd.auto_transfer))

    def _SetAutoTransfer(self, cmd: c.SetAutoTransfer, seq: int) -> None:
        account = self.accounts.get(cmd.account_id)
        if account is None:
            return self._reject("SetAutoTransfer", cmd.account_id, "unknown_account")
        account.auto_transfer = bool(cmd.auto_transfer)
        self._emit(e.AutoTransferSet, cmd.account_id, account.auto_transfer)

    # USD -----------------------------------------------------------------------------------

    def _valid_usd(self, amount: int) -> bool:
        return type(amount) is int and 0 < amount <= self.config.max_usd_move_usd_micros

    def _Deposit(self, cmd: c.Deposit, seq: int) -> None:
        account = self.accounts.get(cmd.account_id)
        if account is None:
            return self._reject("Deposit", cmd.account_id, "unknown_account")
        if not self._valid_usd(cmd.amount_usd_micros):
            return self._reject("Deposit", cmd.account_id, "invalid_amount")
        account.usd += cmd.amount_usd_micros
        self.net_deposits += cmd.amount_usd_micros
        self._emit(e.UsdMoved, cmd.account_id, "deposit", cmd.amount_usd_micros)
        if account.owes:
            self._repay(cmd.account_id)

    def _repay(self, account_id: str) -> None:
        account = self.accounts[account_id]
        paid = min(account.owes, account.usd)
        if paid:
            account.usd -= paid
            account.owes -= paid
            self._emit(e.ReceivableSettled, account_id, paid, account.owes)

    def _SettleReceivable(self, cmd: c.SettleReceivable, seq: int) -> None:
        account = self.accounts.get(cmd.account_id)
        if account is None:
            return self._reject("SettleReceivable", cmd.account_id, "unknown_account")
        if not account.owes:
            return self._reject("SettleReceivable", cmd.account_id, "no_receivable")
        if not account.usd:
            return self._reject("SettleReceivable", cmd.account_id, "insufficient_funds")
        self._repay(cmd.account_id)

    def _Withdraw(self, cmd: c.Withdraw | c.SupplierPayout, seq: int) -> None:
        name = type(cmd).__name__
        account = self.accounts.get(cmd.account_id)
        if account is None:
            return self._reject(name, cmd.account_id, "unknown_account")
        if name == "SupplierPayout" and not account.is_supplier:
            return self._reject(name, cmd.account_id, "not_a_supplier")
        if not self._valid_usd(cmd.amount_usd_micros):
            return self._reject(name, cmd.account_id, "invalid_amount")
        if account.owes:
            return self._reject(name, cmd.account_id, "receivable_outstanding")
        if account.usd < cmd.amount_usd_micros:
            return self._reject(name, cmd.account_id, "insufficient_funds")
        account.usd -= cmd.amount_usd_micros
        self.net_deposits -= cmd.amount_usd_micros
        kind = "payout" if name == "SupplierPayout" else "withdrawal"
        self._emit(e.UsdMoved, cmd.account_id, kind, cmd.amount_usd_micros)

    _SupplierPayout = _Withdraw

    # Supply --------------------------------------------------------------------------------

    def _SetSupplierCapacity(self, cmd: c.SetSupplierCapacity, seq: int) -> None:
        name = "SetSupplierCapacity"
        account = self.accounts.get(cmd.account_id)
        if account is None:
            return self._reject(name, cmd.account_id, "unknown_account")
        if not account.is_supplier:
            return self._reject(name, cmd.account_id, "not_a_supplier")
        if cmd.instrument_id not in self.instruments:
            return self._reject(name, cmd.account_id, "unknown_instrument")
        capacity = cmd.capacity_tokens_per_min
        if type(capacity) is not int or not 0 <= capacity <= 10**12:
            return self._reject(name, cmd.account_id, "invalid_amount")
        account.capacity[cmd.instrument_id] = capacity
        self._emit(e.SupplierCapacitySet, cmd.account_id, cmd.instrument_id, capacity)

    def _units_ok(self, name: str, account_id: str, instrument_id: str, units: int) -> bool:
        if account_id not in self.accounts:
            self._reject(name, account_id, "unknown_account")
            return False
        instrument = self.instruments.get(instrument_id)
        if instrument is None:
            self._reject(name, account_id, "unknown_instrument")
            return False
        if type(units) is not int or not 0 < units <= instrument.max_quantity_units * 1_000:
            self._reject(name, account_id, "invalid_quantity")
            return False
        return True

    def _IssueUnits(self, cmd: c.IssueUnits, seq: int) -> None:
        a, i, units = cmd.account_id, cmd.instrument_id, cmd.quantity_units
        if not self._units_ok("IssueUnits", a, i, units):
            return
        account = self.accounts[a]
        if not account.is_supplier:
            return self._reject("IssueUnits", a, "not_a_supplier")
        if account.owes:
            return self._reject("IssueUnits", a, "receivable_outstanding")
        outstanding = self.issued[a, i] - self.gone[a, i]
        if outstanding + units * TOKENS > account.capacity[i] * self.config.issuance_horizon_min:
            return self._reject("IssueUnits", a, "capacity_exceeded")
        account.issuance[i] += units
        self.issued[a, i] += units * TOKENS
        self._emit(e.UnitsIssued, a, i, units)

    def _TransferIssuanceToTrading(self, cmd: c.TransferIssuanceToTrading, seq: int) -> None:
        a, i, units = cmd.account_id, cmd.instrument_id, cmd.quantity_units
        if not self._units_ok("TransferIssuanceToTrading", a, i, units):
            return
        account = self.accounts[a]
        if account.issuance[i] < units:
            return self._reject("TransferIssuanceToTrading", a, "insufficient_units")
        account.issuance[i] -= units
        account.batches.setdefault(i, []).append(Batch(a, 0, units, ()))
        self._emit(e.UnitsTransferred, a, i, "issuance", "trading", units)

    def _take_units(self, account_id: str, instrument_id: str, units: int) -> list[Batch]:
        """Take units from the front of a holding's FIFO queue, as (supplier, price) chunks."""
        queue = self.accounts[account_id].batches[instrument_id]
        chunks = []
        while units:
            front = queue[0]
            taken = min(front.units, units)
            chunks.append(Batch(front.supplier_id, front.price, taken, front.trade_ids))
            front.units -= taken
            units -= taken
            if not front.units:
                queue.pop(0)
        return chunks

    # Orders ----------------------------------------------------------------------------------

    def _invalid(self, cmd: c.PlaceOrder) -> str | None:
        instrument = self.instruments.get(cmd.instrument_id)
        if instrument is None:
            return "unknown_instrument"
        if cmd.side not in ("buy", "sell"):
            return "invalid_side"
        if cmd.order_type not in ("limit", "market"):
            return "invalid_order_type"
        if cmd.time_in_force not in ("gtc", "ioc", "fok"):
            return "invalid_time_in_force"
        q = cmd.quantity_units
        if type(q) is not int or not (
            instrument.min_quantity_units <= q <= instrument.max_quantity_units
        ):
            return "invalid_quantity"
        if q % instrument.quantity_increment_units:
            return "quantity_off_increment"
        p = cmd.price_usd_micros
        if p is None:
            if cmd.order_type == "limit":
                return "price_required"
        elif type(p) is not int or not 0 < p <= MAX_PRICE:
            return "invalid_price"
        elif p % instrument.price_tick_usd_micros:
            return "price_off_tick"
        if cmd.post_only and (cmd.order_type != "limit" or cmd.time_in_force != "gtc"):
            return "post_only_not_limit"
        return None

    def _PlaceOrder(self, cmd: c.PlaceOrder, seq: int) -> None:
        def reject(reason: str) -> None:
            self._emit(
                e.OrderRejected,
                cmd.account_id,
                str(cmd.instrument_id),
                cmd.client_order_id,
                reason,
            )

        account = self.accounts.get(cmd.account_id)
        if account is None:
            return reject("unknown_account")
        invalid = self._invalid(cmd)
        if invalid:
            return reject(invalid)
        instrument = self.instruments[cmd.instrument_id]
        order = Order(
            seq,
            cmd.account_id,
            cmd.instrument_id,
            cmd.side,
            cmd.order_type,
            cmd.price_usd_micros,
            cmd.quantity_units,
            cmd.time_in_force,
            bool(cmd.post_only),
            cmd.client_order_id,
            account.auto_transfer if cmd.auto_transfer is None else bool(cmd.auto_transfer),
            remaining=cmd.quantity_units,
        )
        if order.client_order_id is not None and order.client_order_id in account.client_orders:
            original = self.orders[account.client_orders[order.client_order_id]]
            if original.request() != order.request():
                return reject("client_order_id_conflict")
            self._emit(e.OrderAlreadyExists, original.order_id, cmd.account_id, cmd.client_order_id)
            return
        is_limit = order.order_type == "limit"
        rests = is_limit and order.time_in_force == "gtc"
        if rests and len(self.open_orders(order.account_id)) >= (
            self.config.max_open_orders_per_account
        ):
            return reject("too_many_open_orders")
        last = self.last_price.get(order.instrument_id)
        if is_limit and last is not None:
            assert order.price is not None
            if out_of_band(order.price, last, instrument.price_band_bps):
                return reject("price_out_of_band")
        opposite = self.queue(order.instrument_id, "sell" if order.is_buy else "buy")
        if order.post_only and opposite and self._crosses(order, opposite[0].price):
            return reject("post_only_would_take")
        if order.is_buy and is_limit:
            assert order.price is not None
            notional = order.price * order.quantity
            lock_bps = max(instrument.maker_fee_bps, instrument.taker_fee_bps)
            lock = notional + ceil_div(notional * lock_bps, BPS)
            if account.usd < lock:
                return reject("insufficient_funds")
            account.usd -= lock
            account.usd_locked += lock
            order.hold_usd = lock
        elif order.is_buy:
            if account.usd <= 0:
                return reject("insufficient_funds")
        else:
            if account.units_available(order.instrument_id) < order.quantity:
                return reject("insufficient_units")
            account.units_locked[order.instrument_id] += order.quantity

        self.orders[seq] = order
        if order.client_order_id is not None:
            account.client_orders[order.client_order_id] = seq
        o = order
        self._emit(
            e.OrderAccepted,
            *(seq, o.account_id, o.instrument_id, o.side, o.order_type, o.price, o.quantity),
            *(o.time_in_force, o.post_only, o.client_order_id, o.auto_transfer, o.hold_usd),
        )
        if order.time_in_force == "fok" and not self._would_fill(order):
            return self._close(order, "fill_or_kill")
        stopped = self._match(order)
        if order.remaining:
            if rests:
                self.resting.append(order)
            elif is_limit:
                self._close(order, "immediate_or_cancel")
            else:
                self._close(order, stopped or "no_liquidity")

    def _would_fill(self, order: Order) -> bool:
        """Fill-or-kill: try the match on a throwaway copy of the whole market."""
        trial = copy.deepcopy(self)
        trial_order = copy.deepcopy(order)
        trial._match(trial_order)
        return trial_order.remaining == 0

    @staticmethod
    def _crosses(order: Order, price: int | None) -> bool:
        assert price is not None
        if order.price is None:
            return True
        return price <= order.price if order.is_buy else price >= order.price

    def _match(self, order: Order) -> str | None:
        instrument = self.instruments[order.instrument_id]
        reference = self.last_price.get(order.instrument_id)  # the last trade at arrival
        market = order.order_type == "market"
        while order.remaining:
            opposite = self.queue(order.instrument_id, "sell" if order.is_buy else "buy")
            if not opposite:
                return "no_liquidity"
            maker = opposite[0]
            assert maker.price is not None
            if not self._crosses(order, maker.price):
                return "price_limit"
            if (
                market
                and reference is not None
                and out_of_band(maker.price, reference, instrument.price_band_bps)
            ):
                return "price_band"
            if maker.account_id == order.account_id:
                self._cancel(maker, "self_trade_prevention")
                continue
            units = min(order.remaining, maker.remaining)
            if market and order.is_buy:
                units = self._affordable(order, maker.price, units, instrument.taker_fee_bps)
                if not units:
                    return "insufficient_funds"
            self._trade(order, maker, units)
        return None

    def _affordable(self, order: Order, price: int, most: int, fee_bps: int) -> int:
        """The most units (≤ most) a market buy can pay for from available USD, fee included."""
        available = self.accounts[order.account_id].usd

        def cost(n: int) -> int:
            fee = ceil_div(order.fee_numerator + n * price * fee_bps, BPS) - order.fee_paid
            return n * price + fee

        low, high = 0, most  # cost grows with n: binary search the last affordable n
        while low < high:
            mid = (low + high + 1) // 2
            if cost(mid) <= available:
                low = mid
            else:
                high = mid - 1
        return low

    @staticmethod
    def _charge(order: Order, notional: int, fee_bps: int) -> int:
        order.fee_numerator += notional * fee_bps
        paid = ceil_div(order.fee_numerator, BPS)
        fee = paid - order.fee_paid
        order.fee_paid = paid
        return fee

    def _buy_hold(self, order: Order) -> int:
        """What an open limit buy must still hold: remaining notional + fee reserve left."""
        assert order.price is not None
        instrument = self.instruments[order.instrument_id]
        lock_bps = max(instrument.maker_fee_bps, instrument.taker_fee_bps)
        rest = order.remaining * order.price
        return rest + ceil_div(order.fee_numerator + rest * lock_bps, BPS) - order.fee_paid

    def _trade(self, taker: Order, maker: Order, units: int) -> None:
        instrument = self.instruments[taker.instrument_id]
        i = instrument.instrument_id
        price = maker.price
        assert price is not None
        notional = price * units
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        self.market_seq[i] += 1
        self.last_price[i] = price
        buy, sell = (taker, maker) if taker.is_buy else (maker, taker)
        buy_bps, sell_bps = (
            (instrument.taker_fee_bps, instrument.maker_fee_bps)
            if taker.is_buy
            else (instrument.maker_fee_bps, instrument.taker_fee_bps)
        )
        buyer_fee = self._charge(buy, notional, buy_bps)
        seller_fee = self._charge(sell, notional, sell_bps)
        self._emit(
            e.Trade,
            *(trade_id, i, self.market_seq[i], price, units, buy.account_id, sell.account_id),
            *(maker.order_id, taker.order_id, taker.side, buyer_fee, seller_fee),
        )
        buyer, seller = self.accounts[buy.account_id], self.accounts[sell.account_id]
        if buy.order_type == "limit":
            buyer.usd_locked -= notional + buyer_fee
            buy.hold_usd -= notional + buyer_fee
        else:
            buyer.usd -= notional + buyer_fee
        seller.usd += notional - seller_fee
        self.fees += buyer_fee + seller_fee

        chunks = self._take_units(sell.account_id, i, units)
        seller.units_locked[i] -= units
        bought = [Batch(ch.supplier_id, price, ch.units, (trade_id,)) for ch in chunks]
        if buy.auto_transfer:
            self._add_lots(buy.account_id, i, bought)
        else:
            buyer.batches.setdefault(i, []).extend(bought)

        for order in (taker, maker):
            order.remaining -= units
            order.status = "partially_filled" if order.remaining else "filled"
        if buy.order_type == "limit":  # release what the better price freed
            release = buy.hold_usd - self._buy_hold(buy)
            assert release >= 0
            buy.hold_usd -= release
            buyer.usd_locked -= release
            buyer.usd += release
        if not maker.remaining:
            self.resting.remove(maker)

    def _release(self, order: Order) -> None:
        account = self.accounts[order.account_id]
        if order.is_buy:
            account.usd_locked -= order.hold_usd
            account.usd += order.hold_usd
            order.hold_usd = 0
        else:
            account.units_locked[order.instrument_id] -= order.remaining

    def _close(self, order: Order, reason: str) -> None:
        self._release(order)
        order.status = "closed"
        self._emit(e.OrderClosed, *order.ids(), reason, order.remaining)

    def _cancel(self, order: Order, reason: str) -> None:
        self.resting.remove(order)
        self._release(order)
        order.status = "cancelled"
        self._emit(e.OrderCancelled, *order.ids(), reason, order.remaining)

    def _CancelOrder(self, cmd: c.CancelOrder, seq: int) -> None:
        order = self.orders.get(cmd.order_id)
        if order is None or order.account_id != cmd.account_id:
            return self._reject("CancelOrder", cmd.account_id, "unknown_order")
        if order not in self.resting:
            return self._reject("CancelOrder", cmd.account_id, "order_not_open")
        self._cancel(order, "requested")

    def _ReplaceOrder(self, cmd: c.ReplaceOrder, seq: int) -> None:
        """Cancel then place, on a throwaway copy; keep the copy only if the place succeeded."""
        order = self.orders.get(cmd.order_id)
        if order is None or order.account_id != cmd.account_id:
            return self._reject("ReplaceOrder", cmd.account_id, "unknown_order")
        if order not in self.resting:
            return self._reject("ReplaceOrder", cmd.account_id, "order_not_open")
        if cmd.price_usd_micros is None and cmd.quantity_units is None:
            return self._reject("ReplaceOrder", cmd.account_id, "nothing_to_replace")
        trial = copy.deepcopy(self)
        old = trial.orders[order.order_id]
        trial._cancel(old, "replaced")
        if old.client_order_id is not None:
            del trial.accounts[old.account_id].client_orders[old.client_order_id]
        trial._emit(e.OrderReplaced, old.order_id, seq, old.account_id, old.instrument_id)
        price = old.price if cmd.price_usd_micros is None else cmd.price_usd_micros
        quantity = old.remaining if cmd.quantity_units is None else cmd.quantity_units
        new = c.PlaceOrder(
            *(old.account_id, old.instrument_id, old.side, "limit", quantity, price),  # type: ignore[arg-type]
            *("gtc", old.post_only, old.client_order_id, old.auto_transfer),
        )
        trial._PlaceOrder(new, seq)
        refused = [ev for ev in trial.out if isinstance(ev, e.OrderRejected)]
        if refused:
            return self._reject("ReplaceOrder", cmd.account_id, refused[0].reason)
        self.__dict__.update(trial.__dict__)

    def _CancelAllOrders(self, cmd: c.CancelAllOrders, seq: int) -> None:
        if cmd.account_id not in self.accounts:
            return self._reject("CancelAllOrders", cmd.account_id, "unknown_account")
        if cmd.instrument_id is not None and cmd.instrument_id not in self.instruments:
            return self._reject("CancelAllOrders", cmd.account_id, "unknown_instrument")
        for order in self.open_orders(cmd.account_id):
            if cmd.instrument_id in (None, order.instrument_id):
                self._cancel(order, "requested")

    # Consumption -----------------------------------------------------------------------------

    def _add_lots(self, account_id: str, instrument_id: str, chunks: list[Batch]) -> None:
        """One lot per run of consecutive chunks with the same (supplier, price)."""
        window = self.instruments[instrument_id].consumption_window_ms
        expires_at = None if window is None else self.now + window
        runs: list[Batch] = []
        for chunk in chunks:
            if runs and (runs[-1].supplier_id, runs[-1].price) == (chunk.supplier_id, chunk.price):
                last = runs[-1]
                trade_ids = last.trade_ids + tuple(
                    t for t in chunk.trade_ids if t not in last.trade_ids
                )
                runs[-1] = Batch(last.supplier_id, last.price, last.units + chunk.units, trade_ids)
            else:
                runs.append(chunk)
        for run in runs:
            lot = Lot(
                self.next_lot_id,
                account_id,
                instrument_id,
                run.supplier_id,
                run.price,
                run.units * TOKENS,
                run.trade_ids,
                expires_at,
            )
            self.next_lot_id += 1
            self.lots.append(lot)
            self._emit(
                e.LotCreated,
                *(lot.lot_id, account_id, instrument_id, lot.supplier_id, lot.price),
                *(lot.remaining, lot.trade_ids, expires_at),
            )

    def _TransferToConsumption(self, cmd: c.TransferToConsumption, seq: int) -> None:
        a, i, units = cmd.account_id, cmd.instrument_id, cmd.quantity_units
        if not self._units_ok("TransferToConsumption", a, i, units):
            return
        if self.accounts[a].units_available(i) < units:
            return self._reject("TransferToConsumption", a, "insufficient_units")
        self._to_consumption(a, i, units)

    def _to_consumption(self, account_id: str, instrument_id: str, units: int) -> None:
        self._add_lots(
            account_id, instrument_id, self._take_units(account_id, instrument_id, units)
        )
        self._emit(e.UnitsTransferred, account_id, instrument_id, "trading", "consumption", units)

    def _TransferToTrading(self, cmd: c.TransferToTrading, seq: int) -> None:
        a, i, units = cmd.account_id, cmd.instrument_id, cmd.quantity_units
        if self._units_ok("TransferToTrading", a, i, units):
            self._reject("TransferToTrading", a, "consumption_to_trading_refused")

    def _lots_of(self, account_id: str, instrument_id: str) -> list[Lot]:
        """The account's lots in one instrument, soonest-expiring first, then oldest."""
        lots = [
            lot
            for lot in self.lots
            if (lot.account_id, lot.instrument_id) == (account_id, instrument_id)
        ]
        return sorted(lots, key=Lot.draw_order)

    def _CommitTokens(self, cmd: c.CommitTokens, seq: int) -> None:
        name, a, i, tokens = "CommitTokens", cmd.account_id, cmd.instrument_id, cmd.tokens
        if a not in self.accounts:
            return self._reject(name, a, "unknown_account")
        if i not in self.instruments:
            return self._reject(name, a, "unknown_instrument")
        if type(tokens) is not int or not 0 < tokens <= self.config.max_call_tokens:
            return self._reject(name, a, "invalid_amount")
        if cmd.call_id in self.calls:
            return self._reject(name, a, "call_exists")
        key, cap = cmd.key_id, cmd.key_spend_cap_tokens
        if key is not None and (type(key) is not str or not 0 < len(key) <= 256):
            return self._reject(name, a, "invalid_receipt")
        if cap is not None:
            if type(cap) is not int or cap < 0 or key is None:
                return self._reject(name, a, "invalid_amount")
            in_flight = sum(call.tokens for call in self.calls.values() if call.key_id == key)
            if self.key_billed[key] + in_flight + tokens > cap:
                return self._reject(name, a, "spend_cap_reached")
        usable = [lot for lot in self._lots_of(a, i) if lot.available and not lot.expired(self.now)]
        if sum(lot.available for lot in usable) < tokens:
            return self._reject(name, a, "insufficient_tokens")
        allocations, needed = [], tokens
        for lot in usable:
            taken = min(lot.available, needed)
            if taken:
                lot.committed += taken
                allocations.append((lot, taken))
                needed -= taken
        self.calls[cmd.call_id] = Call(a, i, tokens, allocations, key)
        drawn = tuple((lot.lot_id, n) for lot, n in allocations)
        self._emit(e.TokensCommitted, cmd.call_id, a, i, tokens, drawn, key)

    def _deliver(self, lot: Lot, tokens: int) -> None:
        lot.remaining -= tokens
        assert lot.remaining >= lot.committed >= 0
        self.delivered[lot.supplier_id, lot.instrument_id] += tokens
        self.gone[lot.supplier_id, lot.instrument_id] += tokens

    def _forfeit(self, lot: Lot) -> None:
        tokens = lot.available
        if tokens:
            lot.remaining -= tokens
            self.forfeited[lot.instrument_id] += tokens
            self.gone[lot.supplier_id, lot.instrument_id] += tokens
            self._emit(e.TokensForfeited, lot.lot_id, lot.account_id, lot.instrument_id, tokens)

    def _SettleCall(self, cmd: c.SettleCall, seq: int) -> None:
        call = self.calls.get(cmd.call_id)
        if call is None:
            return self._reject("SettleCall", None, "unknown_call")
        used = cmd.used_tokens
        if type(used) is not int or not 0 <= used <= self.config.max_call_tokens:
            return self._reject("SettleCall", call.account_id, "invalid_amount")
        if not _receipt_ok(cmd, self.config.max_call_tokens):
            return self._reject("SettleCall", call.account_id, "invalid_receipt")
        del self.calls[cmd.call_id]
        to_bill, billed, touched = used, [], []
        for lot, committed in call.allocations:  # the commitment first, in its own order
            lot.committed -= committed
            delivered = min(committed, to_bill)
            to_bill -= delivered
            if delivered:
                self._deliver(lot, delivered)
                billed.append((lot.lot_id, delivered))
            touched.append(lot)
        released = call.tokens - (used - to_bill)
        for lot in self._lots_of(call.account_id, call.instrument_id):  # then beyond it
            if to_bill and lot.available and not lot.expired(self.now):
                delivered = min(lot.available, to_bill)
                to_bill -= delivered
                self._deliver(lot, delivered)
                billed.append((lot.lot_id, delivered))
                touched.append(lot)
        for lot in touched:
            if lot.expired(self.now):
                self._forfeit(lot)
        if call.key_id is not None:
            self.key_billed[call.key_id] += used - to_bill
        self._emit(
            e.CallSettled,
            *(cmd.call_id, call.account_id, call.instrument_id, used, used - to_bill),
            *(released, to_bill, tuple(billed), call.key_id),
            *(cmd.request_id, cmd.supplier_id, cmd.model, cmd.prompt_tokens),
            *(cmd.completion_tokens, cmd.ttft_ms, cmd.duration_ms, cmd.status),
            cmd.usage_estimated,
        )
        self._substitutions(cmd, call, billed)

    def _substitutions(self, cmd: c.SettleCall, call: Call, billed: list[tuple[int, int]]) -> None:
        """Each lot another delivered: its supplier pays the deliverer (the operator when the
        deliverer is not a supplier account) ceil(tokens × price ÷ 1M), short of USD the
        operator pays the rest and the supplier owes it."""
        if not cmd.supplier_id:
            return
        deliverer = self.accounts.get(cmd.supplier_id)
        payee = cmd.supplier_id if deliverer and deliverer.is_supplier else "operator"
        tokens_of: dict[int, int] = {}
        for lot_id, tokens in billed:
            tokens_of[lot_id] = tokens_of.get(lot_id, 0) + tokens
        lots = {lot.lot_id: lot for lot in self.lots}  # the model keeps emptied lots
        for lot_id, tokens in tokens_of.items():
            lot = lots[lot_id]
            if lot.supplier_id == payee:
                continue
            amount = ceil_div(tokens * lot.price, TOKENS)
            supplier = self.accounts[lot.supplier_id]
            owed = max(0, amount - supplier.usd)
            supplier.usd -= amount - owed
            supplier.owes += owed
            if payee == "operator":
                self.substitutions += amount
            else:
                self.accounts[payee].usd += amount
            self._emit(
                e.SubstitutionSettled,
                *(cmd.call_id, call.account_id, call.instrument_id, lot_id, lot.supplier_id),
                *(payee, tokens, lot.price, amount, owed),
            )

    def _ExpireLots(self, cmd: c.ExpireLots, seq: int) -> None:
        for lot in self.lots:
            if lot.expired(self.now):
                self._forfeit(lot)

    def _Sweep(self, cmd: c.Sweep, seq: int) -> None:
        instrument = self.instruments.get(cmd.instrument_id)
        if instrument is None:
            return self._reject("Sweep", None, "unknown_instrument")
        if not instrument.sweep_enabled:
            return self._reject("Sweep", None, "sweep_disabled")
        i = cmd.instrument_id
        for a, account in self.accounts.items():
            queue = account.batches.get(i, [])
            if all(b.supplier_id == a for b in queue):
                continue  # nothing bought (a supplier's own issued units stay)
            for order in self.queue(i, "sell"):
                if order.account_id == a:
                    self._cancel(order, "sweep")
            bought = [b for b in queue if b.supplier_id != a]
            queue[:] = bought + [b for b in queue if b.supplier_id == a]
            self._to_consumption(a, i, sum(b.units for b in bought))

    # Views -----------------------------------------------------------------------------------

    def balances(self) -> dict[str, int]:
        """The model as the core's ledger: `owner/asset/bucket` → amount, zeros left out."""
        b: Counter[str] = Counter()
        b["external/usd/external"] -= self.net_deposits
        b["operator/usd/fees"] += self.fees
        b["operator/usd/substitutions"] += self.substitutions
        for a, account in self.accounts.items():
            b[f"{a}/usd/available"] += account.usd
            b["operator/usd/receivables"] -= account.owes
            b[f"{a}/usd/locked"] += account.usd_locked
            for i in self.instruments:
                b[f"{a}/{i}/issuance"] += account.issuance[i] * TOKENS
                b[f"{a}/{i}/trading_available"] += account.units_available(i) * TOKENS
                b[f"{a}/{i}/trading_locked"] += account.units_locked[i] * TOKENS
        for lot in self.lots:
            b[f"{lot.account_id}/{lot.instrument_id}/consumption_available"] += lot.available
            b[f"{lot.account_id}/{lot.instrument_id}/consumption_committed"] += lot.committed
        for (s, i), tokens in self.issued.items():
            b[f"{s}/{i}/issued"] -= tokens
        for (s, i), tokens in self.delivered.items():
            b[f"{s}/{i}/issued"] += tokens
        for i, tokens in self.forfeited.items():
            b[f"operator/{i}/forfeited"] += tokens
        return {k: v for k, v in b.items() if v}

    def supplier_positions(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(supplier, instrument) → (outstanding, liability) in tokens, counted from who holds
        the supplier's units: outstanding = everywhere (issuance, trading, lots), liability =
        held by anyone but the supplier (sold − delivered − forfeited)."""
        held: Counter[tuple[str, str, bool]] = Counter()
        for a, account in self.accounts.items():
            for i, units in account.issuance.items():
                held[a, i, False] += units * TOKENS
            for i, queue in account.batches.items():
                for batch in queue:
                    held[batch.supplier_id, i, batch.supplier_id != a] += batch.units * TOKENS
        for lot in self.lots:
            key = (lot.supplier_id, lot.instrument_id, lot.supplier_id != lot.account_id)
            held[key] += lot.remaining
        pairs = {(s, i) for s, i, _ in held} | set(self.issued)
        return {
            (s, i): (held[s, i, False] + held[s, i, True], held[s, i, True])
            for s, i in pairs
            if held[s, i, False] or held[s, i, True]
        }

    def statuses(self) -> dict[int, tuple[str, int]]:
        return {o.order_id: (o.status, o.remaining) for o in self.orders.values()}


def _receipt_ok(cmd: c.SettleCall, max_tokens: int) -> bool:
    def is_int(v: object, limit: int) -> bool:
        return type(v) is int and 0 <= v <= limit

    def is_text(v: object) -> bool:
        return type(v) is str and len(v) <= 256

    return (
        is_text(cmd.request_id)
        and (cmd.supplier_id is None or is_text(cmd.supplier_id))
        and (cmd.model is None or is_text(cmd.model))
        and is_int(cmd.prompt_tokens, max_tokens)
        and is_int(cmd.completion_tokens, max_tokens)
        and (cmd.ttft_ms is None or is_int(cmd.ttft_ms, 86_400_000))
        and (cmd.duration_ms is None or is_int(cmd.duration_ms, 86_400_000))
        and cmd.status in ("ok", "failed", "cancelled")
        and type(cmd.usage_estimated) is bool
    )

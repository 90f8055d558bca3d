"""Shared test helpers: an exchange with an auto-incrementing seq and a controllable clock,
funded buyers and suppliers with units in trading, and the invariants checked after every
command (by the autouse fixture in conftest.py): balanced books, receivables that match the
operator's account, holds that match their orders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TypeVar

from gridmarket.core.commands import (
    Command,
    CommitTokens,
    CreateAccount,
    Deposit,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    SettleCall,
    TransferIssuanceToTrading,
    TransferToConsumption,
)
from gridmarket.core.events import Event, OrderAccepted, Trade
from gridmarket.core.exchange import Exchange, ExchangeConfig, Outcome
from gridmarket.core.ids import AccountId, CallId, InstrumentId, OrderId
from gridmarket.core.instruments import Instrument, default_catalogue
from gridmarket.core.orders import OPEN_STATUSES

#: The instrument most tests trade; tick 0.001 USD, no fees, ±50% band, no window, no sweep.
TP = InstrumentId("text-prime")
#: A second market, for "per market" and "all markets" rules.
TS = InstrumentId("text-standard")
#: Tokens in one unit, micro-USD in one USD.
UNIT = 1_000_000
USD = 1_000_000
HOUR_MS = 3_600_000
#: The clock starts here unless a test says otherwise (2026-01-01T00:30:00Z).
START_MS = 1_767_227_400_000

E = TypeVar("E")


def variant(instrument_id: InstrumentId = TP, **changes: Any) -> Instrument:
    """A catalogue instrument with some fields changed (fees, window, sweep, band...)."""
    return replace(default_catalogue()[instrument_id], **changes)


def check_invariants(ex: Exchange) -> None:
    """What must hold after every command: balanced books and holds that match their orders."""
    state = ex.state
    ledger = state.ledger
    assert all(total == 0 for total in ex.audit().values()), ex.audit()
    assert ledger.negative_accounts() == []
    owed = sum(account.receivable_usd_micros for account in state.accounts.values())
    assert -ledger.get(state.receivables_key) == owed >= 0
    open_orders = [o for o in state.orders.values() if o.status in OPEN_STATUSES]
    for account_id, account in state.accounts.items():
        mine = [o for o in open_orders if o.account_id == account_id]
        assert ledger.get(account.usd_locked) == sum(o.locked_usd_micros for o in mine if o.is_buy)
        assert sorted(account.open_order_ids) == sorted(o.order_id for o in mine)
        for instrument_id, holding in account.holdings.items():
            asks = [o for o in mine if not o.is_buy and o.instrument_id == instrument_id]
            assert ledger.get(holding.trading_locked) == UNIT * sum(o.remaining_units for o in asks)
            assert ledger.get(holding.trading_available) + ledger.get(
                holding.trading_locked
            ) == UNIT * sum(b.units for b in holding.batches)
            assert ledger.get(holding.consumption_available) == sum(
                lot.available_tokens for lot in holding.lots
            )
            assert ledger.get(holding.consumption_committed) == sum(
                lot.committed_tokens for lot in holding.lots
            )
            calls = [
                c
                for c in state.calls.values()
                if c.account_id == account_id and c.instrument_id == instrument_id
            ]
            assert ledger.get(holding.consumption_committed) == sum(c.tokens for c in calls)


class Market:
    """An `Exchange` driven like the sequencer drives it: seq counts up, the clock is ours."""

    def __init__(self, *instruments: Instrument, start_ms: int = START_MS, **config: Any) -> None:
        catalogue = default_catalogue()
        for instrument in instruments:
            catalogue[instrument.instrument_id] = instrument
        self.ex = Exchange(ExchangeConfig(instruments=catalogue, **config))
        self.seq = 0
        self.now_ms = start_ms
        self.log: list[tuple[Command, int, int]] = []

    @property
    def state(self) -> Any:
        return self.ex.state

    # Driving ---------------------------------------------------------------------------

    def apply(self, command: Command) -> Outcome:
        self.seq += 1
        self.log.append((command, self.seq, self.now_ms))
        # conftest checks the invariants after every apply.
        return self.ex.apply(command, self.seq, self.now_ms)

    def events(self, command: Command) -> list[Event]:
        return self.apply(command).events

    def advance(self, ms: int) -> None:
        assert ms >= 0
        self.now_ms += ms

    # Setting up ------------------------------------------------------------------------

    def account(self, name: str, usd_micros: int = 0, *, auto_transfer: bool = False) -> AccountId:
        account_id = AccountId(name)
        self.apply(CreateAccount(account_id, auto_transfer=auto_transfer))
        if usd_micros:
            self.apply(Deposit(account_id, usd_micros))
        return account_id

    def deposit(self, account_id: str, usd_micros: int) -> Outcome:
        return self.apply(Deposit(AccountId(account_id), usd_micros))

    def supplier(
        self,
        name: str,
        units: int = 0,
        instrument_id: InstrumentId = TP,
        *,
        usd_micros: int = 0,
        capacity_tokens_per_min: int = 10**9,
    ) -> AccountId:
        """A supplier with `units` issued and moved to its trading account (and some USD)."""
        account_id = AccountId(name)
        if account_id not in self.state.accounts:
            self.apply(CreateAccount(account_id, is_supplier=True))
        if usd_micros:
            self.deposit(account_id, usd_micros)
        self.apply(SetSupplierCapacity(account_id, instrument_id, capacity_tokens_per_min))
        if units:
            self.apply(IssueUnits(account_id, instrument_id, units))
            self.apply(TransferIssuanceToTrading(account_id, instrument_id, units))
        return account_id

    def place(
        self,
        account_id: str,
        side: str,
        quantity_units: int,
        price_usd_micros: int | None = None,
        *,
        order_type: str | None = None,
        instrument_id: InstrumentId = TP,
        **options: Any,
    ) -> Outcome:
        if order_type is None:
            order_type = "market" if price_usd_micros is None else "limit"
        return self.apply(
            PlaceOrder(
                AccountId(account_id),
                instrument_id,
                side,  # type: ignore[arg-type]
                order_type,  # type: ignore[arg-type]
                quantity_units,
                price_usd_micros,
                **options,
            )
        )

    def buy(
        self, account_id: str, quantity_units: int, price: int | None = None, **kw: Any
    ) -> Outcome:
        return self.place(account_id, "buy", quantity_units, price, **kw)

    def sell(
        self, account_id: str, quantity_units: int, price: int | None = None, **kw: Any
    ) -> Outcome:
        return self.place(account_id, "sell", quantity_units, price, **kw)

    def ask(self, account_id: str, quantity_units: int, price: int, **kw: Any) -> OrderId:
        """A resting limit sell; returns its order id."""
        return order_id(self.sell(account_id, quantity_units, price, **kw))

    def bid(self, account_id: str, quantity_units: int, price: int, **kw: Any) -> OrderId:
        """A resting limit buy; returns its order id."""
        return order_id(self.buy(account_id, quantity_units, price, **kw))

    def bought(
        self, name: str, units: int, price: int, *, seller: str = "s1", auto_transfer: bool = False
    ) -> AccountId:
        """A consumer who bought `units` at `price` from `seller` (a supplier made if missing)."""
        if AccountId(seller) not in self.state.accounts:
            self.supplier(seller)
        self.supplier(seller, units)
        self.ask(seller, units, price)
        buyer = self.account(name, units * price, auto_transfer=auto_transfer)
        trades = of_type(self.buy(buyer, units, price).events, Trade)
        assert sum(t.quantity_units for t in trades) == units
        return buyer

    def consume(
        self, name: str, units: int, *, seller: str = "s1", price: int = 1_000_000
    ) -> AccountId:
        """A consumer holding `units` in consumption (one lot per purchase)."""
        buyer = self.bought(name, units, price, seller=seller)
        self.apply(TransferToConsumption(buyer, TP, units))
        return buyer

    def commit(
        self, call_id: str, account_id: str, tokens: int, instrument_id: InstrumentId = TP
    ) -> Outcome:
        return self.apply(
            CommitTokens(CallId(call_id), AccountId(account_id), instrument_id, tokens)
        )

    def settle(self, call_id: str, used_tokens: int) -> Outcome:
        return self.apply(SettleCall(CallId(call_id), used_tokens))

    # Reading ---------------------------------------------------------------------------

    def bal(self, ledger_key: str) -> int:
        return self.ex.balance(ledger_key)

    def usd(self, account_id: str) -> tuple[int, int]:
        """(available, locked) micro-USD."""
        return self.bal(f"{account_id}/usd/available"), self.bal(f"{account_id}/usd/locked")

    def tokens(
        self, account_id: str, instrument_id: InstrumentId = TP
    ) -> tuple[int, int, int, int]:
        """(trading available, trading locked, consumption available, committed) tokens."""
        return tuple(  # type: ignore[return-value]
            self.bal(f"{account_id}/{instrument_id}/{bucket}")
            for bucket in (
                "trading_available",
                "trading_locked",
                "consumption_available",
                "consumption_committed",
            )
        )

    def balances(self) -> dict[str, int]:
        """A copy of every ledger balance, zeros dropped (for before/after comparisons)."""
        return {k: v for k, v in self.state.ledger.balances.items() if v}

    def lots(self, account_id: str, instrument_id: InstrumentId = TP) -> list[tuple[Any, ...]]:
        """(lot id, supplier, price, remaining, committed, expires at) of an account's lots."""
        holding = self.state.accounts[account_id].holdings.get(instrument_id)
        if holding is None:
            return []
        return [
            (
                lot.lot_id,
                lot.supplier_id,
                lot.price_usd_micros,
                lot.remaining_tokens,
                lot.committed_tokens,
                lot.expires_at_ms,
            )
            for lot in holding.lots
        ]

    def liability(self, supplier_id: str, instrument_id: InstrumentId = TP) -> int:
        return self.state.accounts[supplier_id].supplier_positions[instrument_id].liability_tokens

    def status(self, order_id: int) -> str:
        return str(self.state.orders[order_id].status)


def of_type(events: Iterable[Any], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def kinds(events: Iterable[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def order_id(outcome: Outcome) -> OrderId:
    (accepted,) = of_type(outcome.events, OrderAccepted)
    return accepted.order_id


def trades(outcome: Outcome) -> list[tuple[int, int, int, int]]:
    """(price, quantity, maker order id, market seq) of each trade, in order."""
    return [
        (t.price_usd_micros, t.quantity_units, t.maker_order_id, t.market_seq)
        for t in of_type(outcome.events, Trade)
    ]

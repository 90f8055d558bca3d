"""The whole market state the core decides on, and the small helpers every rule module shares.

`MarketState` is plain data owned by one `Exchange`; rule modules (`funds`, `supply`,
`matching`, `lots`) are functions over it. `seq`/`ts_ms` are those of the command being
applied; `events` collects what it did (handed out and reset by the exchange).
"""

from dataclasses import dataclass, field

from gridmarket.core.accounts import Account, Lot, SupplierPosition
from gridmarket.core.book import Book
from gridmarket.core.events import Event, Rejected
from gridmarket.core.ids import OPERATOR, AccountId, CallId, InstrumentId, LotId
from gridmarket.core.instruments import Instrument, default_catalogue
from gridmarket.core.ledger import USD, Ledger, key
from gridmarket.core.orders import Order


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    instruments: dict[InstrumentId, Instrument] = field(default_factory=default_catalogue)
    max_open_orders_per_account: int = 1_000
    #: Issuance bound: outstanding tokens ≤ capacity (tokens/min) × this many minutes.
    issuance_horizon_min: int = 240
    #: Largest single deposit/withdrawal/payout accepted (a bound on everything).
    max_usd_move_usd_micros: int = 10**15
    #: Largest token commitment for one call.
    max_call_tokens: int = 10**9


class Call:
    """Tokens committed to one call in flight."""

    __slots__ = ("account_id", "allocations", "call_id", "instrument_id", "key_id", "tokens")

    def __init__(
        self,
        call_id: CallId,
        account_id: AccountId,
        instrument_id: InstrumentId,
        tokens: int,
        allocations: list[tuple[Lot, int]],
        key_id: str | None = None,
    ) -> None:
        self.call_id = call_id
        self.account_id = account_id
        self.instrument_id = instrument_id
        self.tokens = tokens
        self.allocations = allocations
        self.key_id = key_id


class MarketState:
    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config
        self.instruments = config.instruments
        self.ledger = Ledger()
        self.accounts: dict[AccountId, Account] = {}
        self.books: dict[InstrumentId, Book] = {i: Book(i) for i in config.instruments}
        #: Every order ever accepted, by id (order id = the placing command's seq).
        self.orders: dict[int, Order] = {}
        self.calls: dict[CallId, Call] = {}
        #: Per consumption key: tokens billed so far plus tokens committed to calls in flight
        #: (what a spend cap bounds). Only keys that made a call appear.
        self.key_tokens: dict[str, int] = {}
        self.lots: dict[LotId, Lot] = {}
        #: Timestamp of each instrument's last scheduled sweep (the scheduler catches up after
        #: downtime by comparing it with the latest 4-hour boundary).
        self.last_sweep_ms: dict[InstrumentId, int] = {}
        self.next_trade_id = 1
        self.next_lot_id = 1
        self.seq = 0
        self.ts_ms = 0
        self.events: list[Event] = []
        self.fees_key = key(OPERATOR, USD, "fees")
        #: What the operator earned delivering other suppliers' lots through its own endpoints.
        self.substitutions_key = key(OPERATOR, USD, "substitutions")
        #: Minus what suppliers owe the operator for substitutions it paid on their behalf.
        self.receivables_key = key(OPERATOR, USD, "receivables")
        self.external_usd_key = key("external", USD, "external")
        self.ledger.contra.add(self.external_usd_key)
        self.ledger.contra.add(self.receivables_key)

    def reject(self, command: str, account_id: str | None, reason: str) -> None:
        self.events.append(Rejected(self.seq, self.ts_ms, command, account_id, reason))

    def supplier_position(self, supplier_id: AccountId, instrument_id: str) -> SupplierPosition:
        account = self.accounts[supplier_id]
        position = account.supplier_positions.get(instrument_id)
        if position is None:
            position = SupplierPosition(supplier_id, instrument_id)
            account.supplier_positions[instrument_id] = position
            self.ledger.contra.add(position.issued_key)
        return position

    def forfeited_key(self, instrument_id: str) -> str:
        return key(OPERATOR, instrument_id, "forfeited")

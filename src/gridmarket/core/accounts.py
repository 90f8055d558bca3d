"""Participants and their per-instrument holdings (trading batches, lots, supplier figures).

An `Account` caches its ledger keys so the hot path never builds strings. A `Holding` is one
account's position in one instrument: its trading units as a FIFO queue of `Batch`es (each
remembers the supplier that issued the units, the price paid and the trades that bought them,
so a resold unit keeps its supplier), and its consumption `Lot`s.
"""

from collections import deque

from gridmarket.core.ids import AccountId, InstrumentId, LotId, TradeId
from gridmarket.core.ledger import USD, key


class Batch:
    __slots__ = ("price_usd_micros", "supplier_id", "trade_ids", "units")

    def __init__(
        self,
        supplier_id: AccountId,
        price_usd_micros: int,
        units: int,
        trade_ids: tuple[TradeId, ...],
    ) -> None:
        self.supplier_id = supplier_id
        self.price_usd_micros = price_usd_micros
        self.units = units
        self.trade_ids = trade_ids

    def snapshot(self) -> tuple[object, ...]:
        return (self.supplier_id, self.price_usd_micros, self.units, self.trade_ids)


class Lot:
    """Tokens in a consumption account from one (supplier, price) batch."""

    __slots__ = (
        "account_id",
        "committed_tokens",
        "created_ms",
        "expires_at_ms",
        "instrument_id",
        "lot_id",
        "price_usd_micros",
        "remaining_tokens",
        "supplier_id",
        "trade_ids",
    )

    def __init__(
        self,
        lot_id: LotId,
        account_id: AccountId,
        instrument_id: InstrumentId,
        supplier_id: AccountId,
        price_usd_micros: int,
        tokens: int,
        trade_ids: tuple[TradeId, ...],
        created_ms: int,
        expires_at_ms: int | None,
    ) -> None:
        self.lot_id = lot_id
        self.account_id = account_id
        self.instrument_id = instrument_id
        self.supplier_id = supplier_id
        self.price_usd_micros = price_usd_micros
        #: Not yet delivered or forfeited; `committed_tokens` of them are held by calls.
        self.remaining_tokens = tokens
        self.committed_tokens = 0
        self.trade_ids = trade_ids
        self.created_ms = created_ms
        self.expires_at_ms = expires_at_ms

    @property
    def available_tokens(self) -> int:
        return self.remaining_tokens - self.committed_tokens

    def expired(self, now_ms: int) -> bool:
        return self.expires_at_ms is not None and self.expires_at_ms <= now_ms

    def draw_order(self) -> tuple[bool, int, int]:
        """Soonest-expiring first (never-expiring last), then oldest."""
        return (self.expires_at_ms is None, self.expires_at_ms or 0, self.lot_id)

    def snapshot(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)


class Holding:
    __slots__ = (
        "batches",
        "consumption_available",
        "consumption_committed",
        "issuance",
        "lots",
        "trading_available",
        "trading_locked",
    )

    def __init__(self, account_id: str, instrument_id: str) -> None:
        self.trading_available = key(account_id, instrument_id, "trading_available")
        self.trading_locked = key(account_id, instrument_id, "trading_locked")
        self.consumption_available = key(account_id, instrument_id, "consumption_available")
        self.consumption_committed = key(account_id, instrument_id, "consumption_committed")
        self.issuance = key(account_id, instrument_id, "issuance")
        self.batches: deque[Batch] = deque()
        #: Lots with tokens left, in creation order.
        self.lots: list[Lot] = []


class SupplierPosition:
    """A supplier's figures on one instrument, in tokens."""

    __slots__ = (
        "capacity_tokens_per_min",
        "consumed_own_tokens",
        "delivered_tokens",
        "forfeited_tokens",
        "issued_key",
        "issued_tokens",
        "sold_tokens",
    )

    def __init__(self, account_id: str, instrument_id: str) -> None:
        self.issued_key = key(account_id, instrument_id, "issued")
        self.capacity_tokens_per_min = 0
        self.issued_tokens = 0
        #: Net tokens of this supplier's units now held by others (sold, less bought back).
        self.sold_tokens = 0
        #: Delivered to / forfeited by other holders (what settles the liability).
        self.delivered_tokens = 0
        self.forfeited_tokens = 0
        #: The supplier's own units consumed or forfeited in its own consumption account.
        self.consumed_own_tokens = 0

    @property
    def outstanding_tokens(self) -> int:
        """Issued and not yet delivered or forfeited by anyone: what capacity must cover."""
        return (
            self.issued_tokens
            - self.delivered_tokens
            - self.forfeited_tokens
            - self.consumed_own_tokens
        )

    @property
    def liability_tokens(self) -> int:
        """Sold − delivered − forfeited: tokens this supplier still owes to others."""
        return self.sold_tokens - self.delivered_tokens - self.forfeited_tokens

    def snapshot(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)


class Account:
    __slots__ = (
        "account_id",
        "auto_transfer",
        "client_orders",
        "holdings",
        "is_supplier",
        "open_order_ids",
        "receivable_usd_micros",
        "supplier_positions",
        "usd_available",
        "usd_locked",
    )

    def __init__(self, account_id: AccountId, is_supplier: bool, auto_transfer: bool) -> None:
        self.account_id = account_id
        self.is_supplier = is_supplier
        self.auto_transfer = auto_transfer
        self.usd_available = key(account_id, USD, "available")
        self.usd_locked = key(account_id, USD, "locked")
        self.holdings: dict[str, Holding] = {}
        self.supplier_positions: dict[str, SupplierPosition] = {}
        #: What this supplier owes the operator for substitutions the operator paid for it
        #: (see `receivables`): the part of `operator/usd/receivables` that is its.
        self.receivable_usd_micros = 0
        #: Ids of resting orders across all markets, oldest first (bounded by configuration).
        self.open_order_ids: dict[int, None] = {}
        #: client_order_id → order id, for idempotent placement.
        self.client_orders: dict[str, int] = {}

    def holding(self, instrument_id: str) -> Holding:
        holding = self.holdings.get(instrument_id)
        if holding is None:
            holding = self.holdings[instrument_id] = Holding(self.account_id, instrument_id)
        return holding

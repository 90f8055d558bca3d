"""The live order and its lifecycle: one transition table is the truth.

    (new) ──► active ──► partially_filled ──► filled
                │  └────────────┬─────────────► cancelled   (requested, self-trade, sweep)
                │               └─────────────► closed      (market/ioc/fok remainder)
                └─► filled | cancelled | closed
    rejected orders never enter the book (an `OrderRejected` event, no order).

An illegal transition is a bug and fails an assertion.
"""

from typing import Final

from gridmarket.core.ids import AccountId, InstrumentId, OrderId

ACTIVE: Final = "active"
PARTIALLY_FILLED: Final = "partially_filled"
FILLED: Final = "filled"
CANCELLED: Final = "cancelled"
CLOSED: Final = "closed"
REJECTED: Final = "rejected"

TRANSITIONS: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        (ACTIVE, PARTIALLY_FILLED),
        (ACTIVE, FILLED),
        (ACTIVE, CANCELLED),
        (ACTIVE, CLOSED),
        (PARTIALLY_FILLED, PARTIALLY_FILLED),
        (PARTIALLY_FILLED, FILLED),
        (PARTIALLY_FILLED, CANCELLED),
        (PARTIALLY_FILLED, CLOSED),
    }
)
OPEN_STATUSES: Final = frozenset({ACTIVE, PARTIALLY_FILLED})
TERMINAL_STATUSES: Final = frozenset({FILLED, CANCELLED, CLOSED, REJECTED})


class Order:
    """A live order. Mutable, slotted: it sits on the matching hot path."""

    __slots__ = (
        "account_id",
        "auto_transfer",
        "client_order_id",
        "closure_reason",
        "created_ms",
        "fee_numerator",
        "fee_paid_usd_micros",
        "filled_notional_usd_micros",
        "filled_units",
        "instrument_id",
        "is_buy",
        "locked_usd_micros",
        "order_id",
        "order_type",
        "post_only",
        "price_usd_micros",
        "quantity_units",
        "remaining_units",
        "side",
        "status",
        "time_in_force",
        "updated_ms",
    )

    def __init__(
        self,
        order_id: OrderId,
        account_id: AccountId,
        instrument_id: InstrumentId,
        side: str,
        order_type: str,
        price_usd_micros: int | None,
        quantity_units: int,
        time_in_force: str,
        post_only: bool,
        client_order_id: str | None,
        auto_transfer: bool,
        created_ms: int,
    ) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.instrument_id = instrument_id
        self.side = side
        self.is_buy = side == "buy"
        self.order_type = order_type
        self.price_usd_micros = price_usd_micros
        self.quantity_units = quantity_units
        self.remaining_units = quantity_units
        self.filled_units = 0
        self.filled_notional_usd_micros = 0
        self.time_in_force = time_in_force
        self.post_only = post_only
        self.client_order_id = client_order_id
        self.auto_transfer = auto_transfer
        self.created_ms = created_ms
        self.updated_ms = created_ms
        self.status = ACTIVE
        #: Why a closed order's remainder was closed, or why a cancelled order was cancelled.
        self.closure_reason: str | None = None
        #: USD still held for this (buy) order: notional of the remainder plus its fee reserve.
        self.locked_usd_micros = 0
        #: Sum of notional × fee bps over fills; fees are charged as its running ceiling, so
        #: many small fills never pay more than one big one would.
        self.fee_numerator = 0
        self.fee_paid_usd_micros = 0

    def transition(self, status: str, ts_ms: int) -> None:
        assert (self.status, status) in TRANSITIONS, (self.order_id, self.status, status)
        self.status = status
        self.updated_ms = ts_ms

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def same_request(
        self,
        instrument_id: str,
        side: str,
        order_type: str,
        price_usd_micros: int | None,
        quantity_units: int,
        time_in_force: str,
        post_only: bool,
        auto_transfer: bool,
    ) -> bool:
        """Whether a repeated `client_order_id` asks for exactly this order again."""
        return (
            self.instrument_id == instrument_id
            and self.side == side
            and self.order_type == order_type
            and self.price_usd_micros == price_usd_micros
            and self.quantity_units == quantity_units
            and self.time_in_force == time_in_force
            and self.post_only == post_only
            and self.auto_transfer == auto_transfer
        )

    def snapshot(self) -> tuple[object, ...]:
        """Every field, for state digests and replay comparison."""
        return tuple(getattr(self, name) for name in self.__slots__)

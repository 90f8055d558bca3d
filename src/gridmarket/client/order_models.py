"""Typed results for one's own trading: orders, fills, pages, counts and the account (`/me`).

Field names are The Grid's (grid-client-contract.md §2 Order and Trade, §2 "Objects that are
not validated" for `/me` and `/orders/count`); amounts are `Decimal`, quantities `int`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Self, TypeVar

from gridmarket.client.parse import Fields

T = TypeVar("T")

#: Statuses The Grid's client counts as not terminal (grid-client-contract.md §2, Order.status).
OPEN_STATUSES = frozenset({"active", "pending", "partially_filled", "open", "cancellation_pending"})


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, and the cursor of the next one (None on the last page)."""

    items: tuple[T, ...]
    has_more: bool
    next_cursor: str | None
    prev_cursor: str | None


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    market_id: str
    side: str
    type: str
    status: str
    price: Decimal | None
    quantity: int
    filled_quantity: int
    remaining_quantity: int | None
    average_price: Decimal | None
    fee: Decimal | None
    time_in_force: str | None
    client_order_id: str | None
    post_only: bool | None
    closure_reason: str | None
    created_at: str | None
    updated_at: str | None
    closed_at: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "order")
        return cls(
            order_id=f.text("order_id", "id"),
            market_id=f.text("market_id"),
            side=f.text("side"),
            type=f.text("type", "order_type"),
            status=f.text("status"),
            price=f.opt_dec("price"),
            quantity=f.whole("quantity", "size"),
            filled_quantity=f.opt_whole("filled_quantity") or 0,
            remaining_quantity=f.opt_whole("remaining_quantity"),
            average_price=f.opt_dec("average_price", "average_fill_price"),
            fee=f.opt_dec("fee"),
            time_in_force=f.opt_text("time_in_force"),
            client_order_id=f.opt_text("client_order_id"),
            post_only=f.opt_bool("post_only"),
            closure_reason=f.opt_text("closure_reason"),
            created_at=f.opt_text("created_at", "submitted_at"),
            updated_at=f.opt_text("updated_at"),
            closed_at=f.opt_text("closed_at"),
        )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class Trade:
    """One of the caller's own fills (GET /v1/trades)."""

    trade_id: str
    market_id: str
    order_id: str | None
    side: str
    price: Decimal
    quantity: int
    total_value: Decimal | None
    fee: Decimal | None
    status: str | None
    execution_timestamp: str | None
    settlement_timestamp: str | None
    trading_account_id: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "trade")
        return cls(
            trade_id=f.text("trade_id", "id"),
            market_id=f.text("market_id"),
            order_id=f.opt_text("order_id"),
            side=f.text("side"),
            price=f.dec("price"),
            quantity=f.whole("quantity"),
            total_value=f.opt_dec("total_value"),
            fee=f.opt_dec("fee"),
            status=f.opt_text("status"),
            execution_timestamp=f.opt_text("execution_timestamp", "executed_at"),
            settlement_timestamp=f.opt_text("settlement_timestamp"),
            trading_account_id=f.opt_text("trading_account_id"),
        )


@dataclass(frozen=True, slots=True)
class OrderCount:
    """Open orders: the total, and per market when the server says."""

    count: int
    by_market: tuple[tuple[str, int], ...]

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "order count")
        rows = f.raw("by_market")
        by_market = []
        for row in rows if isinstance(rows, list) else []:
            r = Fields(row, "order count.by_market")
            by_market.append((r.text("market_id"), r.whole("count")))
        return cls(count=f.whole("count"), by_market=tuple(by_market))


@dataclass(frozen=True, slots=True)
class Me:
    """The account the signing key belongs to."""

    account_id: str
    name: str | None
    email: str | None
    account_mode: str | None
    capabilities: tuple[str, ...]
    supplier: bool | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "me")
        return cls(
            account_id=f.text("account_id", "user_id", "id"),
            name=f.opt_text("name"),
            email=f.opt_text("email"),
            account_mode=f.opt_text("account_mode"),
            capabilities=f.strs("capabilities"),
            supplier=f.opt_bool("supplier"),
        )

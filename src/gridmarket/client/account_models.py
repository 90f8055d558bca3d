"""Typed results for balances, transfers, supplier issuance, and rate limits.

Field names follow grid-client-contract.md §2 (TradingAccount, ConsumptionInstrument and the
"not validated" objects) and grid-api-notes.md §4.5-4.7 and §6.3. Several of these endpoints
answer in more than one documented shape; each `parse` takes the alternatives the contract
lists (`id` for `transfer_id`, a body with or without the `data` envelope for transfers).
Balances are `Decimal` (USD, or units that consumption may split to the token); quantities of
whole units are `int`.

A balance row's `account_id` is the id to fetch that row by (`trading_account(id)`,
`consumption_account(id)`): the row's `id` when the server sends one (Gridmarket sends
`id` = `<owner>:trading:<instrument>` and `account_id` = the owner), else its `account_id`.
`owner_id` is the account that holds the row (`user_id`, else `account_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Self

from gridmarket.client.parse import Fields


@dataclass(frozen=True, slots=True)
class TradingAccount:
    """A trading balance: one instrument's units, or USD (`currency` set) for the cash row."""

    account_id: str
    owner_id: str | None
    instrument_id: str
    currency: str | None
    total_balance: Decimal
    available_balance: Decimal
    locked_balance: Decimal | None
    instrument_symbol: str | None
    market_id: str | None
    status: str | None
    last_trade_price: Decimal | None
    updated_at: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "trading account")
        return cls(
            account_id=f.text("id", "account_id"),
            owner_id=f.opt_text("user_id", "account_id"),
            instrument_id=f.text("instrument_id", "currency"),
            currency=f.opt_text("currency"),
            total_balance=f.dec("total_balance"),
            available_balance=f.dec("available_balance"),
            locked_balance=f.opt_dec("locked_balance", "reserved_balance"),
            instrument_symbol=f.opt_text("instrument_symbol"),
            market_id=f.opt_text("market_id"),
            status=f.opt_text("status"),
            last_trade_price=f.opt_dec("last_trade_price"),
            updated_at=f.opt_text("updated_at"),
        )


@dataclass(frozen=True, slots=True)
class ConsumptionAccount:
    """One instrument held for inference. The balances are in the server's `balance_unit`:
    Gridmarket says `"tokens"` (1 unit = 1,000,000 tokens); a server that sends no unit may
    count in units with up to 6 decimals. `available_tokens` is the available balance in
    tokens: the server's `available_tokens`, else `available_balance` when it is in tokens."""

    account_id: str
    owner_id: str | None
    instrument_id: str
    status: str | None
    balance_unit: str | None
    total_balance: Decimal
    available_balance: Decimal
    committed_balance: Decimal | None
    available_tokens: int | None
    created_at: str | None
    updated_at: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "consumption account")
        unit = f.opt_text("balance_unit")
        available = f.dec("available_balance")
        tokens = f.opt_whole("available_tokens", "available_balance_tokens")
        if tokens is None and unit == "tokens" and available == available.to_integral_value():
            tokens = int(available)
        return cls(
            account_id=f.text("id", "account_id"),
            owner_id=f.opt_text("user_id", "account_id"),
            instrument_id=f.text("instrument_id"),
            status=f.opt_text("status"),
            balance_unit=unit,
            total_balance=f.dec("total_balance"),
            available_balance=available,
            committed_balance=f.opt_dec("committed_balance"),
            available_tokens=tokens,
            created_at=f.opt_text("created_at"),
            updated_at=f.opt_text("updated_at"),
        )


@dataclass(frozen=True, slots=True)
class TransferResult:
    """The answer to a transfer: `{"status", "transfer_id"}`, bare or in `data` (§2); a field
    missing at the top level is read from `data` (Gridmarket sends both)."""

    transfer_id: str
    status: str | None
    instrument_id: str | None
    quantity: int | None

    @classmethod
    def parse(cls, body: object) -> Self:
        top = Fields(body, "transfer")
        inner = top.sub("data") or Fields({}, "transfer.data")
        transfer_id = (
            top.opt_text("transfer_id")
            or inner.opt_text("transfer_id", "id")
            or top.text("transfer_id", "id")
        )
        quantity = top.opt_whole("quantity")
        return cls(
            transfer_id=transfer_id,
            status=top.opt_text("status") or inner.opt_text("status"),
            instrument_id=top.opt_text("instrument_id") or inner.opt_text("instrument_id"),
            quantity=inner.opt_whole("quantity") if quantity is None else quantity,
        )


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """One row of GET /v1/transfer-histories."""

    transfer_id: str
    instrument_id: str
    quantity: int
    from_account_type: str | None
    to_account_type: str | None
    status: str | None
    created_at: str | None
    completed_at: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "transfer history")
        return cls(
            transfer_id=f.text("transfer_id", "id"),
            instrument_id=f.text("instrument_id"),
            quantity=f.whole("quantity"),
            from_account_type=f.opt_text("from_account_type"),
            to_account_type=f.opt_text("to_account_type"),
            status=f.opt_text("status"),
            created_at=f.opt_text("created_at", "transferred_at", "inserted_at"),
            completed_at=f.opt_text("completed_at"),
        )


@dataclass(frozen=True, slots=True)
class IssuanceAccount:
    """A supplier's issued units of one instrument, not yet moved to trading."""

    account_id: str
    instrument_id: str
    instrument_symbol: str | None
    total_issued: int
    total_transferred: int
    available_balance: int

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "issuance account")
        return cls(
            account_id=f.text("id", "account_id"),
            instrument_id=f.text("instrument_id"),
            instrument_symbol=f.opt_text("instrument_symbol"),
            total_issued=f.whole("total_issued"),
            total_transferred=f.opt_whole("total_transferred") or 0,
            available_balance=f.whole("available_balance"),
        )


@dataclass(frozen=True, slots=True)
class SupplyIssuance:
    """One issuance of new units (POST and GET /v1/supply-issuances)."""

    issuance_id: str
    instrument_id: str | None
    quantity: int | None
    status: str | None
    issuance_account_id: str | None
    created_at: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "supply issuance")
        return cls(
            issuance_id=f.text("issuance_id", "id", "issuance_account_id"),
            instrument_id=f.opt_text("instrument_id"),
            quantity=f.opt_whole("quantity"),
            status=f.opt_text("status"),
            issuance_account_id=f.opt_text("issuance_account_id"),
            created_at=f.opt_text("created_at", "issued_at"),
        )


@dataclass(frozen=True, slots=True)
class IssuanceSummary:
    """Per instrument: units issued, still available, moved to trading."""

    instrument_id: str
    instrument_symbol: str | None
    total_issued: int
    units_available: int | None
    units_transferred_to_trading: int | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "issuance summary")
        return cls(
            instrument_id=f.text("instrument_id"),
            instrument_symbol=f.opt_text("instrument_symbol"),
            total_issued=f.whole("total_issued", "quantity"),
            units_available=f.opt_whole("units_available"),
            units_transferred_to_trading=f.opt_whole("units_transferred_to_trading"),
        )


@dataclass(frozen=True, slots=True)
class IssuanceTransfer:
    """The answer to POST /v1/issuance-accounts/transfer."""

    transfer_id: str
    trading_account_id: str | None
    instrument_id: str | None
    quantity: int | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "issuance transfer")
        return cls(
            transfer_id=f.text("transfer_id", "id"),
            trading_account_id=f.opt_text("trading_account_id"),
            instrument_id=f.opt_text("instrument_id"),
            quantity=f.opt_whole("quantity"),
        )


@dataclass(frozen=True, slots=True)
class SupplierLiability:
    """What a supplier owes in inference for the units it sold: total, fulfilled, outstanding."""

    instrument_id: str
    instrument_symbol: str | None
    total_liability: Decimal
    fulfilled: Decimal
    outstanding: Decimal

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "supplier liability")
        return cls(
            instrument_id=f.text("instrument_id"),
            instrument_symbol=f.opt_text("instrument_symbol"),
            total_liability=f.dec("total_liability"),
            fulfilled=f.dec("fulfilled"),
            outstanding=f.dec("outstanding"),
        )


@dataclass(frozen=True, slots=True)
class AccountLimits:
    """The effective order rate limits for one market (GET /v1/account/limits)."""

    market_id: str
    scope: str | None
    max_orders_per_second: int | None
    max_orders_per_minute: int | None
    burst_capacity: int | None
    window_seconds: int | None
    limit: str | None
    remaining: str | None
    retry_after: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "account limits")
        rates = f.sub("order_rate_limits") or Fields({}, "order_rate_limits")
        headers = f.sub("response_headers") or Fields({}, "response_headers")
        return cls(
            market_id=f.text("market_id"),
            scope=rates.opt_text("scope"),
            max_orders_per_second=rates.opt_whole("max_orders_per_second"),
            max_orders_per_minute=rates.opt_whole("max_orders_per_minute"),
            burst_capacity=rates.opt_whole("burst_capacity"),
            window_seconds=rates.opt_whole("window_seconds"),
            limit=headers.opt_text("limit"),
            remaining=headers.opt_text("remaining"),
            retry_after=headers.opt_text("retry_after"),
        )

"""Typed results for one's own consumption usage: receipts, their lots, and daily totals.

Field names are those of `GET /v1/usage` (`gridmarket.api.usage`): tokens and milliseconds are
`int`, USD values `Decimal` (their exact micro-USD integers are kept beside them).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Self

from gridmarket.client.errors import ResponseFormatError
from gridmarket.client.parse import Fields


@dataclass(frozen=True, slots=True)
class UsageLot:
    """Tokens of one lot billed to a call, and the trades that funded the lot."""

    lot_id: str
    tokens: int
    supplier_id: str | None
    price: Decimal | None
    value_usd: Decimal | None
    value_usd_micros: int | None
    trade_ids: tuple[str, ...]

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "usage lot")
        return cls(
            lot_id=f.text("lot_id"),
            tokens=f.whole("tokens"),
            supplier_id=f.opt_text("supplier_id"),
            price=f.opt_dec("price"),
            value_usd=f.opt_dec("value_usd"),
            value_usd_micros=f.opt_whole("value_usd_micros"),
            trade_ids=f.strs("trade_ids"),
        )


@dataclass(frozen=True, slots=True)
class UsageSubstitution:
    """A lot another supplier (or the operator's endpoint) delivered, and what its own supplier
    paid the substitute for it (`receivable_usd`: the part the operator paid instead)."""

    lot_id: str
    supplier_id: str
    substitute_id: str
    tokens: int
    amount_usd: Decimal
    amount_usd_micros: int | None
    receivable_usd: Decimal
    receivable_usd_micros: int | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "usage substitution")
        return cls(
            lot_id=f.text("lot_id"),
            supplier_id=f.text("supplier_id"),
            substitute_id=f.text("substitute_id"),
            tokens=f.whole("tokens"),
            amount_usd=f.dec("amount_usd"),
            amount_usd_micros=f.opt_whole("amount_usd_micros"),
            receivable_usd=f.dec("receivable_usd"),
            receivable_usd_micros=f.opt_whole("receivable_usd_micros"),
        )


@dataclass(frozen=True, slots=True)
class UsageReceipt:
    """One settled consumption call."""

    request_id: str
    call_id: str
    key_id: str | None
    instrument_id: str
    supplier_id: str | None
    model: str | None
    status: str
    usage_estimated: bool
    prompt_tokens: int
    completion_tokens: int
    used_tokens: int
    billed_tokens: int
    released_tokens: int
    unbilled_tokens: int
    ttft_ms: int | None
    duration_ms: int | None
    tokens_per_second: int | None
    billed_value_usd: Decimal
    billed_value_usd_micros: int | None
    lots: tuple[UsageLot, ...]
    #: Lots another endpoint delivered (empty when their own suppliers did).
    substitutions: tuple[UsageSubstitution, ...]
    started_at: str | None
    settled_at: str

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "usage receipt")
        lots = _list(f, obj, "lots")
        substitutions = _list(f, obj, "substitutions")
        return cls(
            request_id=f.opt_text("request_id") or "",
            call_id=f.text("call_id", "id"),
            key_id=f.opt_text("key_id"),
            instrument_id=f.text("instrument_id"),
            supplier_id=f.opt_text("supplier_id"),
            model=f.opt_text("model"),
            status=f.text("status"),
            usage_estimated=bool(f.opt_bool("usage_estimated")),
            prompt_tokens=f.whole("prompt_tokens"),
            completion_tokens=f.whole("completion_tokens"),
            used_tokens=f.whole("used_tokens"),
            billed_tokens=f.whole("billed_tokens"),
            released_tokens=f.opt_whole("released_tokens") or 0,
            unbilled_tokens=f.opt_whole("unbilled_tokens") or 0,
            ttft_ms=f.opt_whole("ttft_ms"),
            duration_ms=f.opt_whole("duration_ms"),
            tokens_per_second=f.opt_whole("tokens_per_second"),
            billed_value_usd=f.dec("billed_value_usd"),
            billed_value_usd_micros=f.opt_whole("billed_value_usd_micros"),
            lots=tuple(UsageLot.parse(lot) for lot in lots),
            substitutions=tuple(UsageSubstitution.parse(sub) for sub in substitutions),
            started_at=f.opt_text("started_at"),
            settled_at=f.text("settled_at", "created_at"),
        )


def _list(f: Fields, obj: object, name: str) -> list[object]:
    """The receipt's list field `name`; absent is empty (older servers)."""
    value = f.raw(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ResponseFormatError(f"usage receipt.{name}: expected a list", body=obj)
    return value


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """One UTC day's totals for one key (None: calls without a key) and instrument."""

    date: str
    key_id: str | None
    instrument_id: str
    calls: int
    ok_calls: int
    failed_calls: int
    cancelled_calls: int
    prompt_tokens: int
    completion_tokens: int
    billed_tokens: int
    unbilled_tokens: int
    billed_value_usd: Decimal

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "daily usage")
        return cls(
            date=f.text("date"),
            key_id=f.opt_text("key_id"),
            instrument_id=f.text("instrument_id"),
            calls=f.whole("calls"),
            ok_calls=f.opt_whole("ok_calls") or 0,
            failed_calls=f.opt_whole("failed_calls") or 0,
            cancelled_calls=f.opt_whole("cancelled_calls") or 0,
            prompt_tokens=f.whole("prompt_tokens"),
            completion_tokens=f.whole("completion_tokens"),
            billed_tokens=f.whole("billed_tokens"),
            unbilled_tokens=f.opt_whole("unbilled_tokens") or 0,
            billed_value_usd=f.dec("billed_value_usd"),
        )

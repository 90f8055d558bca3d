"""Typed results for self-service: one's own consumption keys, signing keys, settings, and
money out (withdrawals, supplier payouts).

Field names are Gridmarket's (`api.self_service`, README "Self-service"), which follow The
Grid's where it has them (`key_prefix`, `is_active`, `account_mode`, `auto_top_up_enabled`).
Amounts are `Decimal` USD; a consumption key's plaintext (`key`) is present only in the answer
that created it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Self

from gridmarket.client.parse import Fields


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A consumption key (what inference calls present); `key` only when just created."""

    key_id: str
    name: str | None
    key_prefix: str | None
    is_active: bool
    expires_at: str | None
    spend_cap_tokens: int | None
    created_at: str | None
    revoked_at: str | None
    key: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "api key")
        return cls(
            key_id=f.text("key_id", "id"),
            name=f.opt_text("name"),
            key_prefix=f.opt_text("key_prefix"),
            is_active=f.opt_bool("is_active") is not False,
            expires_at=f.opt_text("expires_at"),
            spend_cap_tokens=f.opt_whole("spend_cap_tokens"),
            created_at=f.opt_text("created_at"),
            revoked_at=f.opt_text("revoked_at"),
            key=f.opt_text("key"),
        )


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A registered Ed25519 public key; revoke it by `key_id` or `fingerprint`."""

    key_id: str
    fingerprint: str
    label: str | None
    public_key: str | None
    is_active: bool
    created_at: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "signing key")
        return cls(
            key_id=f.text("key_id", "id"),
            fingerprint=f.text("fingerprint"),
            label=f.opt_text("label"),
            public_key=f.opt_text("public_key"),
            is_active=f.opt_bool("is_active") is not False,
            created_at=f.opt_text("created_at"),
        )


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """The account's mode and automation settings (GET /v1/self/system-settings)."""

    account_mode: str
    auto_transfer_enabled: bool | None
    auto_buy_enabled: bool | None
    auto_reload_enabled: bool | None
    auto_reload_threshold_usd: Decimal | None
    auto_reload_amount_usd: Decimal | None
    auto_reload_monthly_limit_usd: Decimal | None
    mode_managed_fields: tuple[str, ...]

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "settings")
        auto_buy = f.opt_bool("auto_buy_enabled")
        return cls(
            account_mode=f.text("account_mode", "mode"),
            auto_transfer_enabled=f.opt_bool("auto_transfer_enabled"),
            auto_buy_enabled=f.opt_bool("auto_top_up_enabled") if auto_buy is None else auto_buy,
            auto_reload_enabled=f.opt_bool("auto_reload_enabled"),
            auto_reload_threshold_usd=f.opt_dec("auto_reload_threshold_usd"),
            auto_reload_amount_usd=f.opt_dec("auto_reload_amount_usd"),
            auto_reload_monthly_limit_usd=f.opt_dec("auto_reload_monthly_limit_usd"),
            mode_managed_fields=f.strs("mode_managed_fields"),
        )


@dataclass(frozen=True, slots=True)
class MoneyOut:
    """A withdrawal or a supplier payout, done: the amount and the USD still available."""

    record_id: str
    amount_usd: Decimal
    status: str | None
    usd_available: Decimal | None
    created_at: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "withdrawal or payout")
        return cls(
            record_id=f.text("id", "withdrawal_id", "payout_id"),
            amount_usd=f.dec("amount_usd"),
            status=f.opt_text("status"),
            usd_available=f.opt_dec("usd_available"),
            created_at=f.opt_text("created_at"),
        )

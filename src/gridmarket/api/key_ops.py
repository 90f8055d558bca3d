"""An account's keys, managed by the account itself or by the operator: shared by both APIs.

Consumption keys (`api_key`, grid-api-notes.md §7.1). Created with a `name` (1-100 printable
characters), an optional `expires_at` (ISO 8601 with a zone, in the future, at most
`MAX_KEY_LIFETIME_DAYS` ahead) and an optional `spend_cap_tokens` (a positive whole number, as
a JSON integer or a digit string). The full key is in the create answer only; the registry
keeps its SHA-256 hash and `key_prefix` (`auth.keys`). At most `MAX_ACTIVE_CONSUMPTION_KEYS`
unrevoked keys per account (expired ones count until revoked): the next is a 409
`key_limit_reached`. Listing shows the unrevoked keys, `is_active` false once expired.
Revoking another account's key, an unknown or an already revoked one is the same 404.

Signing keys (`signing_key`, §7.2 and grid-client-contract.md line 257). Registered with a
`label` and `public_key`, the standard base64 of a raw 32-byte Ed25519 public key; the
fingerprint is `auth.signing.fingerprint` (base64 SHA-256, no padding). A key is addressed by
its `key_id`, `sk_` + the fingerprint in URL-safe base64 (the fingerprint itself may hold `/`),
or by the fingerprint. A fingerprint already registered, by any account, is a 409
`signing_key_exists`; at most `MAX_ACTIVE_SIGNING_KEYS` active keys per account.

Revoking a signing key: an account may revoke any of its keys, the one signing the request
included (rotation: register the new key, then revoke the old one with either), but never its
LAST active key, a 409 `last_signing_key`, so that it cannot lock itself out. The operator may
revoke the last key too (a compromised account), and may register a key for an account
without giving a public key: a new pair is made and its private half shown once.
Revocation takes effect at once in this process: the signed-request key cache drops the
account's entries (`KeyCache.forget_account`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import State

from gridmarket.adapters import registry
from gridmarket.adapters.registry import ConsumptionKeyRecord, SigningKeyRecord
from gridmarket.api import wire
from gridmarket.api.bodies import invalid, object_of, text
from gridmarket.api.errors import Problem
from gridmarket.api.signed import KeyCache
from gridmarket.auth.keys import ConsumptionKeyId, display_prefix, new_consumption_key
from gridmarket.auth.revocations import consumption_key_revocations
from gridmarket.auth.signing import PUBLIC_KEY_BYTES, fingerprint, generate_keypair
from gridmarket.core.ids import AccountId
from gridmarket.service.market import MarketService
from gridmarket.service.sequencer import system_clock_ms

MAX_ACTIVE_CONSUMPTION_KEYS = 25
MAX_ACTIVE_SIGNING_KEYS = 10
MAX_NAME_CHARS = 100
MAX_KEY_LIFETIME_DAYS = 3_650
MAX_SPEND_CAP_TOKENS = 10**15
MAX_KEY_REF_CHARS = 64
SIGNING_KEY_ID_PREFIX = "sk_"
_EXPIRES_AT_MAX_CHARS = 40
_DIGITS = re.compile(r"[1-9][0-9]{0,15}")


def forget_cached_keys(state: State, account_id: str) -> None:
    """Make a key or mode change of `account_id` visible to the next signed request here."""
    cache = getattr(state, "signing_key_cache", None)
    if isinstance(cache, KeyCache):
        cache.forget_account(account_id)


# -- consumption keys -----------------------------------------------------------------------------


def consumption_key_json(key: ConsumptionKeyRecord, now_ms: int) -> dict[str, Any]:
    expired = key.expires_at_ms is not None and key.expires_at_ms <= now_ms
    return {
        "id": key.key_id,
        "key_id": key.key_id,
        "name": key.name,
        "key_prefix": key.prefix,
        "is_active": key.revoked_at_ms is None and not expired,
        "expires_at": None if key.expires_at_ms is None else wire.timestamp(key.expires_at_ms),
        "spend_cap_tokens": key.spend_cap_tokens,
        "created_at": wire.timestamp(key.created_at_ms),
        "revoked_at": None if key.revoked_at_ms is None else wire.timestamp(key.revoked_at_ms),
    }


def _expires_at_ms(value: object, now_ms: int) -> int | None:
    if value is None:
        return None
    field = "api_key.expires_at"
    why = 'an ISO 8601 time with a zone, such as "2027-01-01T00:00:00Z"'
    if not isinstance(value, str) or len(value) > _EXPIRES_AT_MAX_CHARS:
        raise invalid(field, why)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(field, why) from None
    if moment.tzinfo is None:
        raise invalid(field, "must carry a zone (Z or an offset)")
    now = datetime.fromtimestamp(now_ms // 1000, tz=UTC)
    if moment <= now:
        raise invalid(field, "must be in the future")
    if moment > now + timedelta(days=MAX_KEY_LIFETIME_DAYS):
        raise invalid(field, f"at most {MAX_KEY_LIFETIME_DAYS} days ahead")
    delta = moment - datetime.fromtimestamp(0, tz=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _spend_cap(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is int and 0 < value <= MAX_SPEND_CAP_TOKENS:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value) and int(value) <= MAX_SPEND_CAP_TOKENS:
        return int(value)
    raise invalid("api_key.spend_cap_tokens", "a positive whole number of tokens, or null")


async def list_consumption_keys(market: MarketService, account_id: str) -> list[dict[str, Any]]:
    keys = await asyncio.to_thread(
        registry.active_consumption_keys,
        market.store.engine,
        account_id,
        MAX_ACTIVE_CONSUMPTION_KEYS,
    )
    now_ms = system_clock_ms()
    return [consumption_key_json(key, now_ms) for key in keys]


async def create_consumption_key(
    market: MarketService, account_id: AccountId, body: dict[str, Any]
) -> dict[str, Any]:
    """`body` is `{"api_key": {...}}`; the new key, its plaintext in `key` (shown only here)."""
    fields = object_of(
        body.get("api_key"), ("name", "expires_at", "spend_cap_tokens"), field="api_key"
    )
    now_ms = system_clock_ms()
    name = text(fields.get("name"), "api_key.name", MAX_NAME_CHARS)
    expires_at_ms = _expires_at_ms(fields.get("expires_at"), now_ms)
    cap = _spend_cap(fields.get("spend_cap_tokens"))
    plaintext, key_id, key_hash = new_consumption_key()
    record = ConsumptionKeyRecord(
        key_id,
        account_id,
        key_hash,
        display_prefix(plaintext),
        now_ms,
        expires_at_ms,
        cap,
        None,
        name,
    )
    result = await asyncio.to_thread(
        registry.insert_consumption_key_capped,
        market.store.engine,
        record,
        MAX_ACTIVE_CONSUMPTION_KEYS,
    )
    if result == "no_account":
        raise Problem(404, "account_not_found", f"no account {account_id!r}")
    if result == "limit_reached":
        raise Problem(
            409,
            "key_limit_reached",
            f"at most {MAX_ACTIVE_CONSUMPTION_KEYS} consumption keys per account: revoke one first",
        )
    return consumption_key_json(record, now_ms) | {"key": plaintext}


async def revoke_consumption_key(
    market: MarketService, account_id: str, key_ref: str
) -> dict[str, Any]:
    """Revoke one of the account's keys; a 404 for any other (foreign, unknown, revoked)."""
    revoked = None
    if len(key_ref) <= MAX_KEY_REF_CHARS:
        revoked = await asyncio.to_thread(
            registry.revoke_own_consumption_key,
            market.store.engine,
            account_id,
            ConsumptionKeyId(key_ref),
            system_clock_ms(),
        )
    if revoked is None:
        shown = key_ref[:MAX_KEY_REF_CHARS]
        raise Problem(404, "api_key_not_found", f"api key {shown!r} not found")
    consumption_key_revocations.revoked(revoked.key_id)  # the gateway's key cache forgets it
    return consumption_key_json(revoked, system_clock_ms())


# -- signing keys ---------------------------------------------------------------------------------


def signing_key_id(key_fingerprint: str) -> str:
    """`sk_` + the fingerprint in URL-safe base64: usable as one path segment."""
    return SIGNING_KEY_ID_PREFIX + key_fingerprint.replace("+", "-").replace("/", "_")


def _fingerprint_of(key_ref: str) -> str:
    if key_ref.startswith(SIGNING_KEY_ID_PREFIX):
        return key_ref[len(SIGNING_KEY_ID_PREFIX) :].replace("-", "+").replace("_", "/")
    return key_ref


def signing_key_json(key: SigningKeyRecord) -> dict[str, Any]:
    key_id = signing_key_id(key.fingerprint)
    return {
        "key_id": key_id,
        "id": key_id,
        "label": key.label,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "is_active": key.revoked_at_ms is None,
        "created_at": wire.timestamp(key.created_at_ms),
        "last_used_at": None,
    }


def _public_key(value: object) -> bytes:
    field = "signing_key.public_key"
    why = f"the standard base64 of a raw {PUBLIC_KEY_BYTES}-byte Ed25519 public key"
    if not isinstance(value, str) or len(value) > 64:
        raise invalid(field, why)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(field, why) from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise invalid(field, why)
    return raw


async def list_signing_keys(market: MarketService, account_id: str) -> list[dict[str, Any]]:
    keys = await asyncio.to_thread(
        registry.active_signing_keys, market.store.engine, account_id, MAX_ACTIVE_SIGNING_KEYS
    )
    return [signing_key_json(key) for key in keys]


async def add_signing_key(
    market: MarketService, account_id: AccountId, body: dict[str, Any], *, may_generate: bool
) -> dict[str, Any]:
    """`body` is `{"signing_key": {"label", "public_key"}}`; the registered key.

    With `may_generate` (the operator) and no `public_key`, a new pair is made and the answer
    carries its `private_key` (standard base64 of the 32-byte seed), shown only here.
    """
    fields = object_of(body.get("signing_key"), ("label", "public_key"), field="signing_key")
    label = text(fields.get("label"), "signing_key.label", MAX_NAME_CHARS)
    private_key = None
    if may_generate and fields.get("public_key") is None:
        seed, public_raw = generate_keypair()
        private_key = base64.b64encode(seed).decode("ascii")
    else:
        public_raw = _public_key(fields.get("public_key"))
    record = SigningKeyRecord(
        fingerprint(public_raw),
        account_id,
        base64.b64encode(public_raw).decode("ascii"),
        system_clock_ms(),
        None,
        label,
    )
    result = await asyncio.to_thread(
        registry.insert_signing_key_capped, market.store.engine, record, MAX_ACTIVE_SIGNING_KEYS
    )
    if result == "no_account":
        raise Problem(404, "account_not_found", f"no account {account_id!r}")
    if result == "exists":
        raise Problem(409, "signing_key_exists", "this public key is already registered")
    if result == "limit_reached":
        raise Problem(
            409,
            "key_limit_reached",
            f"at most {MAX_ACTIVE_SIGNING_KEYS} active signing keys per account: revoke one first",
        )
    answer = signing_key_json(record)
    if private_key is not None:
        answer["private_key"] = private_key
    return answer


async def revoke_signing_key(
    state: State, market: MarketService, account_id: str, key_ref: str, *, keep_one: bool
) -> dict[str, Any]:
    """Revoke one of the account's active keys (404 otherwise), effective at once here."""
    result = "not_found"
    key_fingerprint = _fingerprint_of(key_ref)
    if len(key_ref) <= MAX_KEY_REF_CHARS:
        result = await asyncio.to_thread(
            registry.revoke_own_signing_key,
            market.store.engine,
            account_id,
            key_fingerprint,
            system_clock_ms(),
            keep_one=keep_one,
        )
    if result == "not_found":
        raise Problem(
            404, "signing_key_not_found", f"signing key {key_ref[:MAX_KEY_REF_CHARS]!r} not found"
        )
    if result == "last_key":
        raise Problem(
            409,
            "last_signing_key",
            "this is the account's last active signing key: register another one first",
        )
    forget_cached_keys(state, account_id)
    key_id = signing_key_id(key_fingerprint)
    return {"key_id": key_id, "id": key_id, "fingerprint": key_fingerprint, "is_active": False}

"""The account registry: names, modes and keys of accounts, beside the ledger, in the same database.

The pure core knows an account by its id and two flags; everything else about it lives here:
its display name, its mode (`easy`/`advanced`), its Ed25519 signing keys (public halves, looked
up by fingerprint on every signed request) and its consumption keys (SHA-256 hashes, looked up
by hash on every consumption call; see `auth.keys`). No secret is ever stored.

Functions are synchronous SQLAlchemy Core over an `Engine` (the store's), each in its own
short transaction; the API calls them through `asyncio.to_thread`. Reads of single keys return
the record whatever its state: callers decide what revoked or expired means.

Ordering with the core: an account's registry row is written BEFORE its `CreateAccount` is
submitted to the sequencer, and accounts found here but missing from the core are re-submitted
on start (see `service.accounts.repair_missing_accounts`).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import sqlalchemy as sa

from gridmarket.adapters.schema import accounts, consumption_keys, signing_keys
from gridmarket.auth.keys import ConsumptionKeyHash, ConsumptionKeyId
from gridmarket.auth.outcomes import Fingerprint
from gridmarket.core.ids import AccountId

Mode = Literal["easy", "advanced"]
MODES: tuple[Mode, ...] = ("easy", "advanced")
#: The most rows one listing returns.
MAX_PAGE_ROWS = 100


class AccountRecord(NamedTuple):
    account_id: AccountId
    name: str
    is_supplier: bool
    mode: Mode
    created_at_ms: int


class SigningKeyRecord(NamedTuple):
    fingerprint: Fingerprint
    account_id: AccountId
    #: Standard base64 of the raw 32-byte Ed25519 public key.
    public_key: str
    created_at_ms: int
    revoked_at_ms: int | None = None


class ConsumptionKeyRecord(NamedTuple):
    key_id: ConsumptionKeyId
    account_id: AccountId
    key_hash: ConsumptionKeyHash
    #: The first characters of the key, for listings (`auth.keys.display_prefix`).
    prefix: str
    created_at_ms: int
    expires_at_ms: int | None = None
    spend_cap_tokens: int | None = None
    revoked_at_ms: int | None = None


def _account(row: sa.Row[Any]) -> AccountRecord:
    mode = row.mode
    assert mode in MODES, mode
    return AccountRecord(
        AccountId(row.account_id), row.name, bool(row.is_supplier), mode, row.created_at_ms
    )


# -- writing ---------------------------------------------------------------------------------


def insert_account(
    engine: sa.Engine,
    account: AccountRecord,
    signing_key: SigningKeyRecord | None = None,
    consumption_key: ConsumptionKeyRecord | None = None,
) -> None:
    """Insert an account, with its first keys if given, in ONE transaction."""
    assert account.mode in MODES, account.mode
    with engine.begin() as connection:
        connection.execute(sa.insert(accounts).values(account._asdict()))
        if signing_key is not None:
            assert signing_key.account_id == account.account_id
            connection.execute(sa.insert(signing_keys).values(signing_key._asdict()))
        if consumption_key is not None:
            assert consumption_key.account_id == account.account_id
            connection.execute(sa.insert(consumption_keys).values(consumption_key._asdict()))


def insert_signing_key(engine: sa.Engine, key: SigningKeyRecord) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(signing_keys).values(key._asdict()))


def insert_consumption_key(engine: sa.Engine, key: ConsumptionKeyRecord) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(consumption_keys).values(key._asdict()))


def revoke_signing_key(engine: sa.Engine, fingerprint: Fingerprint, now_ms: int) -> bool:
    """Revoke an active key; False if there is no such key or it was already revoked."""
    with engine.begin() as connection:
        result = connection.execute(
            sa.update(signing_keys)
            .where(signing_keys.c.fingerprint == fingerprint)
            .where(signing_keys.c.revoked_at_ms.is_(None))
            .values(revoked_at_ms=now_ms)
        )
        return result.rowcount == 1


def revoke_consumption_key(engine: sa.Engine, key_id: ConsumptionKeyId, now_ms: int) -> bool:
    """Revoke an active key; False if there is no such key or it was already revoked."""
    with engine.begin() as connection:
        result = connection.execute(
            sa.update(consumption_keys)
            .where(consumption_keys.c.key_id == key_id)
            .where(consumption_keys.c.revoked_at_ms.is_(None))
            .values(revoked_at_ms=now_ms)
        )
        return result.rowcount == 1


# -- reading ---------------------------------------------------------------------------------


def get_account(engine: sa.Engine, account_id: str) -> AccountRecord | None:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(accounts).where(accounts.c.account_id == account_id)
        ).one_or_none()
    return None if row is None else _account(row)


def list_accounts(
    engine: sa.Engine, *, after_account_id: str | None = None, limit: int = 50
) -> list[AccountRecord]:
    """Accounts in account id order, from just after `after_account_id` (a keyset cursor)."""
    assert 0 < limit <= MAX_PAGE_ROWS, limit
    query = sa.select(accounts).order_by(accounts.c.account_id).limit(limit)
    if after_account_id is not None:
        query = query.where(accounts.c.account_id > after_account_id)
    with engine.connect() as connection:
        return [_account(row) for row in connection.execute(query)]


def all_account_ids(engine: sa.Engine) -> list[AccountId]:
    """Every registered account id, oldest first (for the start-up repair)."""
    query = sa.select(accounts.c.account_id).order_by(
        accounts.c.created_at_ms, accounts.c.account_id
    )
    with engine.connect() as connection:
        return [AccountId(str(value)) for value in connection.execute(query).scalars()]


def list_signing_keys(engine: sa.Engine, account_id: str) -> list[SigningKeyRecord]:
    query = (
        sa.select(signing_keys)
        .where(signing_keys.c.account_id == account_id)
        .order_by(signing_keys.c.created_at_ms, signing_keys.c.fingerprint)
    )
    with engine.connect() as connection:
        return [SigningKeyRecord(*row) for row in connection.execute(query)]


def list_consumption_keys(engine: sa.Engine, account_id: str) -> list[ConsumptionKeyRecord]:
    query = (
        sa.select(consumption_keys)
        .where(consumption_keys.c.account_id == account_id)
        .order_by(consumption_keys.c.created_at_ms, consumption_keys.c.key_id)
    )
    with engine.connect() as connection:
        return [ConsumptionKeyRecord(*row) for row in connection.execute(query)]


def find_signing_key(engine: sa.Engine, fingerprint: str) -> SigningKeyRecord | None:
    """The key registered under `fingerprint`, revoked or not; None if there is none."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(signing_keys).where(signing_keys.c.fingerprint == fingerprint)
        ).one_or_none()
    return None if row is None else SigningKeyRecord(*row)


def find_consumption_key(engine: sa.Engine, key_hash: str) -> ConsumptionKeyRecord | None:
    """The key stored under `key_hash`, revoked or expired or not; None if there is none."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(consumption_keys).where(consumption_keys.c.key_hash == key_hash)
        ).one_or_none()
    return None if row is None else ConsumptionKeyRecord(*row)

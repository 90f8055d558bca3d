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

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa

from gridmarket.adapters.schema import accounts, consumption_keys, signing_keys
from gridmarket.adapters.transactions import write_transaction
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
    #: What the owner calls the key (migration 0003); None for keys made before it.
    label: str | None = None


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
    #: What the owner calls the key (migration 0003); None for keys made before it.
    name: str | None = None


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
    with write_transaction(engine) as connection:
        connection.execute(sa.insert(accounts).values(account._asdict()))
        if signing_key is not None:
            assert signing_key.account_id == account.account_id
            connection.execute(sa.insert(signing_keys).values(signing_key._asdict()))
        if consumption_key is not None:
            assert consumption_key.account_id == account.account_id
            connection.execute(sa.insert(consumption_keys).values(consumption_key._asdict()))


def insert_signing_key(engine: sa.Engine, key: SigningKeyRecord) -> None:
    with write_transaction(engine) as connection:
        connection.execute(sa.insert(signing_keys).values(key._asdict()))


def insert_consumption_key(engine: sa.Engine, key: ConsumptionKeyRecord) -> None:
    with write_transaction(engine) as connection:
        connection.execute(sa.insert(consumption_keys).values(key._asdict()))


def revoke_signing_key(engine: sa.Engine, fingerprint: Fingerprint, now_ms: int) -> bool:
    """Revoke an active key; False if there is no such key or it was already revoked."""
    with write_transaction(engine) as connection:
        result = connection.execute(
            sa.update(signing_keys)
            .where(signing_keys.c.fingerprint == fingerprint)
            .where(signing_keys.c.revoked_at_ms.is_(None))
            .values(revoked_at_ms=now_ms)
        )
        return result.rowcount == 1


def revoke_consumption_key(engine: sa.Engine, key_id: ConsumptionKeyId, now_ms: int) -> bool:
    """Revoke an active key; False if there is no such key or it was already revoked."""
    with write_transaction(engine) as connection:
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


# -- self-service (migration 0003) -------------------------------------------------------------
# Writes that check before they change (a cap on keys, the last signing key, settings read
# then written) first lock the account's row with a no-op UPDATE: on PostgreSQL a row lock,
# on SQLite the database's write lock taken at once (a deferred transaction that read first
# could not upgrade). Two such writes on one account therefore run one after the other.


class AccountSettingsRecord(NamedTuple):
    """An account's stored settings; amounts in micro-USD, None when not set."""

    mode: Mode
    #: None: the mode's default (on in `easy`, off in `advanced`).
    auto_buy_enabled: bool | None
    auto_reload_enabled: bool
    auto_reload_threshold_usd_micros: int | None
    auto_reload_amount_usd_micros: int | None
    auto_reload_monthly_limit_usd_micros: int | None


class AutoReload(NamedTuple):
    enabled: bool
    threshold_usd_micros: int | None
    amount_usd_micros: int | None
    monthly_limit_usd_micros: int | None


SigningKeyInsert = Literal["inserted", "limit_reached", "exists", "no_account"]
SigningKeyRevoke = Literal["revoked", "not_found", "last_key"]


def _lock_account(connection: sa.Connection, account_id: str) -> bool:
    """Lock the account's row for the rest of the transaction; False if there is none."""
    result = connection.execute(
        sa.update(accounts)
        .where(accounts.c.account_id == account_id)
        .values(account_id=accounts.c.account_id)
    )
    return result.rowcount == 1


def _active_count(connection: sa.Connection, table: sa.Table, account_id: str) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(table)
        .where(table.c.account_id == account_id)
        .where(table.c.revoked_at_ms.is_(None))
    )
    return int(connection.execute(query).scalar_one())


def insert_consumption_key_capped(
    engine: sa.Engine, key: ConsumptionKeyRecord, max_active: int
) -> Literal["inserted", "limit_reached", "no_account"]:
    """Insert `key` unless its account already has `max_active` unrevoked keys."""
    with write_transaction(engine) as connection:
        if not _lock_account(connection, key.account_id):
            return "no_account"
        if _active_count(connection, consumption_keys, key.account_id) >= max_active:
            return "limit_reached"
        connection.execute(sa.insert(consumption_keys).values(key._asdict()))
        return "inserted"


def insert_signing_key_capped(
    engine: sa.Engine, key: SigningKeyRecord, max_active: int
) -> SigningKeyInsert:
    """Insert `key` unless the fingerprint is taken (by anyone) or the account is at its cap."""
    try:
        with write_transaction(engine) as connection:
            if not _lock_account(connection, key.account_id):
                return "no_account"
            taken = connection.execute(
                sa.select(signing_keys.c.fingerprint).where(
                    signing_keys.c.fingerprint == key.fingerprint
                )
            ).first()
            if taken is not None:
                return "exists"
            if _active_count(connection, signing_keys, key.account_id) >= max_active:
                return "limit_reached"
            connection.execute(sa.insert(signing_keys).values(key._asdict()))
            return "inserted"
    except sa.exc.IntegrityError:  # the same key registered at the same moment elsewhere
        return "exists"


def revoke_own_signing_key(
    engine: sa.Engine, account_id: str, fingerprint: str, now_ms: int, *, keep_one: bool
) -> SigningKeyRevoke:
    """Revoke one of the account's active keys; with `keep_one`, never its last active one."""
    with write_transaction(engine) as connection:
        if not _lock_account(connection, account_id):
            return "not_found"
        owned = (
            sa.select(signing_keys.c.fingerprint)
            .where(signing_keys.c.fingerprint == fingerprint)
            .where(signing_keys.c.account_id == account_id)
            .where(signing_keys.c.revoked_at_ms.is_(None))
        )
        if connection.execute(owned).first() is None:
            return "not_found"
        if keep_one and _active_count(connection, signing_keys, account_id) <= 1:
            return "last_key"
        connection.execute(
            sa.update(signing_keys)
            .where(signing_keys.c.fingerprint == fingerprint)
            .values(revoked_at_ms=now_ms)
        )
        return "revoked"


def revoke_own_consumption_key(
    engine: sa.Engine, account_id: str, key_id: str, now_ms: int
) -> ConsumptionKeyRecord | None:
    """Revoke one of the account's unrevoked keys: the key as it now is, or None if none."""
    with write_transaction(engine) as connection:
        result = connection.execute(
            sa.update(consumption_keys)
            .where(consumption_keys.c.key_id == key_id)
            .where(consumption_keys.c.account_id == account_id)
            .where(consumption_keys.c.revoked_at_ms.is_(None))
            .values(revoked_at_ms=now_ms)
        )
        if result.rowcount != 1:
            return None
        row = connection.execute(
            sa.select(consumption_keys).where(consumption_keys.c.key_id == key_id)
        ).one()
        return ConsumptionKeyRecord(*row)


def active_signing_keys(engine: sa.Engine, account_id: str, limit: int) -> list[SigningKeyRecord]:
    """The account's unrevoked signing keys, oldest first, at most `limit`."""
    query = (
        sa.select(signing_keys)
        .where(signing_keys.c.account_id == account_id)
        .where(signing_keys.c.revoked_at_ms.is_(None))
        .order_by(signing_keys.c.created_at_ms, signing_keys.c.fingerprint)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [SigningKeyRecord(*row) for row in connection.execute(query)]


def active_consumption_keys(
    engine: sa.Engine, account_id: str, limit: int
) -> list[ConsumptionKeyRecord]:
    """The account's unrevoked consumption keys (expired too), oldest first, at most `limit`."""
    query = (
        sa.select(consumption_keys)
        .where(consumption_keys.c.account_id == account_id)
        .where(consumption_keys.c.revoked_at_ms.is_(None))
        .order_by(consumption_keys.c.created_at_ms, consumption_keys.c.key_id)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [ConsumptionKeyRecord(*row) for row in connection.execute(query)]


def _settings(row: sa.Row[Any]) -> AccountSettingsRecord:
    mode = row.mode
    assert mode in MODES, mode
    return AccountSettingsRecord(
        mode,
        None if row.auto_buy_enabled is None else bool(row.auto_buy_enabled),
        bool(row.auto_reload_enabled),
        row.auto_reload_threshold_usd_micros,
        row.auto_reload_amount_usd_micros,
        row.auto_reload_monthly_limit_usd_micros,
    )


def get_settings(engine: sa.Engine, account_id: str) -> AccountSettingsRecord | None:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(accounts).where(accounts.c.account_id == account_id)
        ).one_or_none()
    return None if row is None else _settings(row)


def set_mode(engine: sa.Engine, account_id: str, mode: Mode) -> bool:
    """Switch the mode; auto-buy goes back to the new mode's default. False: no account."""
    assert mode in MODES, mode
    with write_transaction(engine) as connection:
        result = connection.execute(
            sa.update(accounts)
            .where(accounts.c.account_id == account_id)
            .values(mode=mode, auto_buy_enabled=None)
        )
        return result.rowcount == 1


def set_auto_buy(engine: sa.Engine, account_id: str, enabled: bool | None) -> bool:
    """Store auto-buy (None: the mode's default). False: no account."""
    with write_transaction(engine) as connection:
        result = connection.execute(
            sa.update(accounts)
            .where(accounts.c.account_id == account_id)
            .values(auto_buy_enabled=enabled)
        )
        return result.rowcount == 1


def update_auto_reload(
    engine: sa.Engine, account_id: str, change: Callable[[AutoReload], AutoReload]
) -> AutoReload | None:
    """Read, `change` and write the Auto-Reload settings in one locked transaction.

    `change` may raise to abort (nothing is written); None if there is no such account.
    """
    with write_transaction(engine) as connection:
        if not _lock_account(connection, account_id):
            return None
        row = connection.execute(
            sa.select(accounts).where(accounts.c.account_id == account_id)
        ).one()
        stored = _settings(row)
        new = change(
            AutoReload(
                stored.auto_reload_enabled,
                stored.auto_reload_threshold_usd_micros,
                stored.auto_reload_amount_usd_micros,
                stored.auto_reload_monthly_limit_usd_micros,
            )
        )
        connection.execute(
            sa.update(accounts)
            .where(accounts.c.account_id == account_id)
            .values(
                auto_reload_enabled=new.enabled,
                auto_reload_threshold_usd_micros=new.threshold_usd_micros,
                auto_reload_amount_usd_micros=new.amount_usd_micros,
                auto_reload_monthly_limit_usd_micros=new.monthly_limit_usd_micros,
            )
        )
        return new

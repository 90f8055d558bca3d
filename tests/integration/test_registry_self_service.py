"""Registry writes behind self-service, on SQLite and PostgreSQL: caps, the last key, settings,
concurrent writers, and migration 0003 over rows written before it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from migrations import upgrade_with_rows

from gridmarket.adapters import registry
from gridmarket.adapters.registry import (
    AccountRecord,
    AutoReload,
    ConsumptionKeyRecord,
    SigningKeyRecord,
)
from gridmarket.adapters.store import Store
from gridmarket.auth.keys import ConsumptionKeyId, hash_consumption_key
from gridmarket.auth.outcomes import Fingerprint
from gridmarket.core.ids import AccountId

A = AccountId("acct_a")
B = AccountId("acct_b")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    store = Store(database_url)
    store.migrate()
    try:
        registry.insert_account(store.engine, AccountRecord(A, "alice", False, "easy", 1))
        registry.insert_account(store.engine, AccountRecord(B, "bob", False, "advanced", 2))
        yield store.engine
    finally:
        store.close()


def _signing(fingerprint: str, account_id: str = A, label: str = "l") -> SigningKeyRecord:
    return SigningKeyRecord(Fingerprint(fingerprint), AccountId(account_id), "cHVi", 1, None, label)


def _consumption(key_id: str, account_id: str = A) -> ConsumptionKeyRecord:
    key_hash = hash_consumption_key("gm-" + key_id)
    return ConsumptionKeyRecord(
        ConsumptionKeyId(key_id), AccountId(account_id), key_hash, "gm-x", 1, None, 7, None, "n"
    )


def test_consumption_keys_are_capped_per_account_and_revoked_only_by_their_owner(
    engine: sa.Engine,
) -> None:
    assert registry.insert_consumption_key_capped(engine, _consumption("k1"), 2) == "inserted"
    assert registry.insert_consumption_key_capped(engine, _consumption("k2"), 2) == "inserted"
    assert registry.insert_consumption_key_capped(engine, _consumption("k3"), 2) == "limit_reached"
    assert registry.insert_consumption_key_capped(engine, _consumption("k4", B), 2) == "inserted"
    nobody = _consumption("k5", "acct_nobody")
    assert registry.insert_consumption_key_capped(engine, nobody, 2) == "no_account"
    assert registry.revoke_own_consumption_key(engine, B, "k1", 5) is None
    revoked = registry.revoke_own_consumption_key(engine, A, "k1", 5)
    assert revoked is not None and revoked.revoked_at_ms == 5 and revoked.name == "n"
    assert [k.key_id for k in registry.active_consumption_keys(engine, A, 10)] == ["k2"]
    assert registry.insert_consumption_key_capped(engine, _consumption("k3"), 2) == "inserted"


def test_signing_keys_keep_the_last_one_unless_told_not_to(engine: sa.Engine) -> None:
    assert registry.insert_signing_key_capped(engine, _signing("fa1"), 2) == "inserted"
    assert registry.insert_signing_key_capped(engine, _signing("fa1", B), 2) == "exists"
    assert registry.insert_signing_key_capped(engine, _signing("fa2"), 2) == "inserted"
    assert registry.insert_signing_key_capped(engine, _signing("fa3"), 2) == "limit_reached"
    assert registry.revoke_own_signing_key(engine, B, "fa1", 3, keep_one=True) == "not_found"
    assert registry.revoke_own_signing_key(engine, A, "fa1", 3, keep_one=True) == "revoked"
    assert registry.revoke_own_signing_key(engine, A, "fa2", 3, keep_one=True) == "last_key"
    assert registry.revoke_own_signing_key(engine, A, "fa2", 3, keep_one=False) == "revoked"
    assert registry.active_signing_keys(engine, A, 10) == []
    found = registry.find_signing_key(engine, "fa1")
    assert found is not None and found.label == "l" and found.revoked_at_ms == 3


def test_concurrent_revocations_never_remove_the_last_key(engine: sa.Engine) -> None:
    for name in ("c1", "c2", "c3", "c4"):
        assert registry.insert_signing_key_capped(engine, _signing(name, B), 10) == "inserted"
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda f: registry.revoke_own_signing_key(engine, B, f, 9, keep_one=True),
                ["c1", "c2", "c3", "c4"],
            )
        )
    assert sorted(results) == ["last_key", "revoked", "revoked", "revoked"]
    assert len(registry.active_signing_keys(engine, B, 10)) == 1


def test_settings_round_trip_and_a_mode_switch_resets_auto_buy(engine: sa.Engine) -> None:
    stored = registry.get_settings(engine, B)
    assert stored == registry.AccountSettingsRecord("advanced", None, False, None, None, None)
    assert registry.set_auto_buy(engine, B, True)
    new = AutoReload(True, 1, 2, 3)
    assert registry.update_auto_reload(engine, B, lambda old: new) == new
    assert registry.get_settings(engine, B) == registry.AccountSettingsRecord(
        "advanced", True, True, 1, 2, 3
    )
    assert registry.set_mode(engine, B, "easy")
    after = registry.get_settings(engine, B)
    assert after is not None and after.mode == "easy" and after.auto_buy_enabled is None
    assert after.auto_reload_amount_usd_micros == 2

    def refuse(old: AutoReload) -> AutoReload:
        raise ValueError("no")

    with pytest.raises(ValueError):
        registry.update_auto_reload(engine, B, refuse)
    assert registry.get_settings(engine, B) == after
    assert registry.update_auto_reload(engine, "acct_nobody", lambda old: old) is None
    assert not registry.set_mode(engine, "acct_nobody", "easy")


def test_migration_0003_keeps_rows_written_before_it(database_url: str) -> None:
    store = Store(database_url)
    try:
        upgrade_with_rows(
            store,
            "0002",
            "INSERT INTO accounts VALUES ('acct_old', 'old', false, 'easy', 1)",
            "INSERT INTO signing_keys VALUES ('fp-old', 'acct_old', 'cHVi', 1, NULL)",
        )
        store.migrate()
        settings = registry.get_settings(store.engine, "acct_old")
        assert settings == registry.AccountSettingsRecord("easy", None, False, None, None, None)
        key = registry.find_signing_key(store.engine, "fp-old")
        assert key is not None and key.label is None
    finally:
        store.close()

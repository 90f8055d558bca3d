"""The account registry on SQLite and PostgreSQL, and the start-up repair of a half-made account."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gridmarket.adapters import registry
from gridmarket.adapters.registry import AccountRecord, ConsumptionKeyRecord, SigningKeyRecord
from gridmarket.adapters.store import Store
from gridmarket.auth.keys import ConsumptionKeyHash, ConsumptionKeyId, hash_consumption_key
from gridmarket.auth.outcomes import Fingerprint
from gridmarket.core.commands import Deposit
from gridmarket.core.events import UsdMoved
from gridmarket.core.ids import AccountId
from gridmarket.service.accounts import open_account, repair_missing_accounts
from gridmarket.service.market import MarketService
from gridmarket.service.runtime import open_market
from gridmarket.settings import Settings

A = AccountId("acct_a")
B = AccountId("acct_b")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    store = Store(database_url)
    store.migrate()
    try:
        yield store.engine
    finally:
        store.close()


def _signing(fingerprint: str, account_id: AccountId, at_ms: int = 1) -> SigningKeyRecord:
    return SigningKeyRecord(Fingerprint(fingerprint), account_id, "cHVibGlj", at_ms)


def _consumption(key_id: str, account_id: AccountId, plaintext: str) -> ConsumptionKeyRecord:
    return ConsumptionKeyRecord(
        ConsumptionKeyId(key_id), account_id, hash_consumption_key(plaintext), plaintext[:11], 1
    )


def test_accounts_and_keys_round_trip(engine: sa.Engine) -> None:
    alice = AccountRecord(A, "alice", False, "easy", 10)
    registry.insert_account(engine, alice, _signing("fp-a", A), _consumption("ck_a", A, "gm-a"))
    registry.insert_account(engine, AccountRecord(B, "acme", True, "advanced", 20))
    registry.insert_signing_key(engine, _signing("fp-b", B))
    registry.insert_consumption_key(
        engine, _consumption("ck_b", B, "gm-b")._replace(expires_at_ms=99, spend_cap_tokens=5)
    )

    assert registry.get_account(engine, A) == alice
    assert registry.get_account(engine, "nobody") is None
    assert registry.list_accounts(engine, limit=1) == [alice]
    assert [a.account_id for a in registry.list_accounts(engine, after_account_id=A)] == [B]
    assert registry.all_account_ids(engine) == [A, B]
    assert registry.list_signing_keys(engine, A) == [_signing("fp-a", A)]
    found = registry.find_consumption_key(engine, hash_consumption_key("gm-b"))
    assert found is not None and found.expires_at_ms == 99 and found.spend_cap_tokens == 5
    assert registry.find_consumption_key(engine, hash_consumption_key("gm-c")) is None
    assert registry.find_signing_key(engine, "fp-a") == _signing("fp-a", A)
    assert registry.find_signing_key(engine, "fp-x") is None


def test_revocation_keeps_the_row_and_happens_once(engine: sa.Engine) -> None:
    registry.insert_account(
        engine,
        AccountRecord(A, "alice", False, "easy", 10),
        _signing("fp-a", A),
        _consumption("ck_a", A, "gm-a"),
    )

    assert registry.revoke_signing_key(engine, Fingerprint("fp-a"), 50)
    assert not registry.revoke_signing_key(engine, Fingerprint("fp-a"), 60)
    assert not registry.revoke_signing_key(engine, Fingerprint("fp-x"), 60)
    assert registry.revoke_consumption_key(engine, ConsumptionKeyId("ck_a"), 70)
    assert not registry.revoke_consumption_key(engine, ConsumptionKeyId("ck_a"), 80)

    key = registry.find_signing_key(engine, "fp-a")
    assert key is not None and key.revoked_at_ms == 50
    (ckey,) = registry.list_consumption_keys(engine, A)
    assert ckey.revoked_at_ms == 70


def test_an_account_with_a_bad_key_is_not_half_written(engine: sa.Engine) -> None:
    registry.insert_account(
        engine, AccountRecord(A, "alice", False, "easy", 10), None, _consumption("ck_a", A, "k")
    )
    clash = ConsumptionKeyRecord(ConsumptionKeyId("ck_b"), B, ConsumptionKeyHash(""), "", 1)
    clash = clash._replace(key_hash=hash_consumption_key("k"))  # the same hash: unique
    with pytest.raises(sa.exc.IntegrityError):
        registry.insert_account(engine, AccountRecord(B, "b", False, "easy", 10), None, clash)
    assert registry.get_account(engine, B) is None


async def test_a_registered_account_missing_from_the_core_is_recreated(database_url: str) -> None:
    # The crash: the registry row is committed, the process dies before CreateAccount.
    async with MarketService.from_url(database_url, tune_gc=False) as market:
        opened = await open_account(market, name="kept", is_supplier=False, mode="easy")
        assert await repair_missing_accounts(market) == []
    store = Store(database_url)
    try:
        registry.insert_account(store.engine, AccountRecord(B, "half-made", True, "advanced", 1))
    finally:
        store.close()

    async with MarketService.from_url(database_url, tune_gc=False) as market:
        assert B not in market.sequencer.exchange.state.accounts
        assert await repair_missing_accounts(market) == [B]
        account = market.sequencer.exchange.state.accounts[B]
        assert account.is_supplier and not account.auto_transfer  # advanced: no auto-transfer
        assert market.sequencer.exchange.state.accounts[opened.account_id].auto_transfer
        assert await repair_missing_accounts(market) == []
        outcome = await market.submit(Deposit(B, 1_000_000))
        assert isinstance(outcome.events[0], UsdMoved)


async def test_the_server_runtime_repairs_on_start(database_url: str, tmp_path: object) -> None:
    store = Store(database_url)
    try:
        store.migrate()
        registry.insert_account(store.engine, AccountRecord(A, "orphan", False, "easy", 1))
    finally:
        store.close()
    settings = Settings.resolve(data_dir=str(tmp_path), database_url=database_url, environ={})
    async with open_market(settings) as market:
        assert market.sequencer.exchange.state.accounts[A].auto_transfer
    async with open_market(settings) as market:  # and once repaired, it stays so
        assert A in market.sequencer.exchange.state.accounts
        await asyncio.sleep(0)

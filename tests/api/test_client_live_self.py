"""`gridmarket.client` self-service against a real `gridmarket serve`: one's own consumption
keys, signing keys (a key registered through the client then signs for real, and stops when
revoked), settings and modes, withdrawals and payouts, sync and async, and never another's."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from live_server import Server

from gridmarket.auth.signing import generate_keypair
from gridmarket.client import (
    AsyncClient,
    AuthError,
    AutoModeRestricted,
    Client,
    NotFound,
    ValidationError,
)

MARKET = "text-prime"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("client-self") / "home")
    try:
        yield running
    finally:
        running.kill()


def _account(server: Server, where: Path, name: str, *, supplier: bool = False) -> Path:
    return server.key_file(where / f"{name}.json", name, deposit_usd="100", supplier=supplier)


def _usd(client: Client) -> Decimal:
    (row,) = [row for row in client.trading_accounts() if row.currency == "USD"]
    return row.available_balance


def test_consumption_keys(server: Server, tmp_path: Path) -> None:
    alice = _account(server, tmp_path, "alice")
    bob = _account(server, tmp_path, "bob")
    with Client(server.url, key_file=alice) as client, Client(server.url, key_file=bob) as other:
        before = {key.key_id for key in client.api_keys()}  # the one made with the account
        made = client.create_api_key("bot", spend_cap_tokens=5_000)
        assert made.key and made.key.startswith(made.key_prefix or "?")
        assert (made.name, made.spend_cap_tokens, made.is_active) == ("bot", 5_000, True)
        listed = {key.key_id: key for key in client.api_keys()}
        assert set(listed) == before | {made.key_id}
        assert listed[made.key_id].key is None  # the plaintext is shown once
        with pytest.raises(NotFound):
            other.revoke_api_key(made.key_id)
        client.revoke_api_key(made.key_id)
        assert {key.key_id for key in client.api_keys()} == before
        with pytest.raises(ValidationError):
            client.create_api_key("late", expires_at="2000-01-01T00:00:00Z")


def test_a_registered_signing_key_signs_until_revoked(server: Server, tmp_path: Path) -> None:
    alice = _account(server, tmp_path, "carol")
    seed, public = generate_keypair()
    with Client(server.url, key_file=alice) as client:
        added = client.add_signing_key("laptop", base64.b64encode(public).decode())
        assert added.label == "laptop" and added.is_active
        assert added.fingerprint in {key.fingerprint for key in client.signing_keys()}
        with Client(server.url, signing_key=seed) as laptop:
            assert laptop.me().account_id == client.me().account_id
            client.revoke_signing_key(added.fingerprint)
            with pytest.raises(AuthError):
                laptop.me()
        assert added.fingerprint not in {key.fingerprint for key in client.signing_keys()}


def test_settings_and_modes(server: Server, tmp_path: Path) -> None:
    with Client(server.url, key_file=_account(server, tmp_path, "dave")) as client:
        settings = client.settings()
        assert settings.account_mode == "advanced" and settings.mode_managed_fields == ()
        assert client.set_auto_transfer(True).auto_transfer_enabled is True
        assert client.set_auto_buy(True).auto_buy_enabled is True
        assert client.settings().auto_transfer_enabled is True
        client.set_account_mode("easy")
        easy = client.settings()
        assert easy.account_mode == "easy" and "auto_buy_enabled" in easy.mode_managed_fields
        with pytest.raises(AutoModeRestricted):
            client.place_order(MARKET, "buy", 1, price="1.000")
        client.set_account_mode("advanced")
        assert client.place_order(MARKET, "buy", 1, price="1.000").status == "active"
        assert client.cancel_all_orders() == 1
        with pytest.raises(ValueError):
            client.set_account_mode("turbo")


def test_withdrawals_and_payouts(server: Server, tmp_path: Path) -> None:
    trader = _account(server, tmp_path, "erin")
    supplier = _account(server, tmp_path, "frank", supplier=True)
    with Client(server.url, key_file=trader) as client:
        done = client.withdraw("12.50")
        assert (done.amount_usd, done.usd_available) == (Decimal("12.5"), Decimal("87.5"))
        assert _usd(client) == Decimal("87.5")
        with pytest.raises(ValidationError) as caught:
            client.payout("1")
        assert caught.value.code == "not_a_supplier"
        with pytest.raises(ValidationError):
            client.withdraw("1000")
        assert _usd(client) == Decimal("87.5")  # refusals changed nothing
        with pytest.raises(TypeError):
            client.withdraw(1.5)  # type: ignore[arg-type]
    with Client(server.url, key_file=supplier) as client:
        assert client.payout(Decimal("40")).usd_available == Decimal("60")


async def test_the_async_client_does_the_same(server: Server, tmp_path: Path) -> None:
    path = _account(server, tmp_path, "gina")
    async with AsyncClient(server.url, key_file=path) as client:
        assert (await client.instrument_by_symbol(MARKET)).instrument_id == MARKET
        made = await client.create_api_key("async")
        assert made.key_id in {key.key_id for key in await client.api_keys()}
        await client.revoke_api_key(made.key_id)
        assert (await client.settings()).account_mode == "advanced"
        assert (await client.set_auto_buy(False)).auto_buy_enabled is False
        assert (await client.withdraw(1)).usd_available == Decimal("99")
        assert len(await client.signing_keys()) == 1
        await client.set_account_mode("advanced")

"""Self-service settings and money out on a real server: modes, auto-reload, withdrawals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import Server
from signed_client import Account, error_of, open_account

SETTINGS = "/v1/self/system-settings"
BUY = {"market_id": "text-prime", "side": "buy", "type": "limit", "quantity": "1", "price": "1.000"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("selfsettings") / "home")
    try:
        yield running
    finally:
        running.kill()


def _settings(account: Account) -> dict[str, Any]:
    data: dict[str, Any] = account.data("GET", SETTINGS)
    return data


def _set_mode(account: Account, mode: str) -> None:
    response = account.call("POST", f"{SETTINGS}/account-mode", {"mode": mode})
    assert response.status_code == 204, response.text
    assert response.content == b""


def test_an_easy_account_has_its_managed_settings_on(server: Server) -> None:
    settings = _settings(open_account(server))
    assert settings == {
        "account_mode": "easy",
        "auto_transfer_enabled": True,
        "auto_buy_enabled": True,
        "auto_top_up_enabled": True,
        "auto_reload_enabled": False,
        "auto_reload_threshold_usd": None,
        "auto_reload_amount_usd": None,
        "auto_reload_monthly_limit_usd": None,
        "mode_managed_fields": ["auto_transfer_enabled", "auto_buy_enabled", "auto_top_up_enabled"],
    }
    advanced = _settings(open_account(server, mode="advanced"))
    assert advanced["account_mode"] == "advanced" and advanced["mode_managed_fields"] == []
    assert advanced["auto_transfer_enabled"] is False and advanced["auto_buy_enabled"] is False


def test_switching_modes_decides_at_once_whether_orders_are_allowed(server: Server) -> None:
    alice = open_account(server, deposit="100")
    refused = alice.call("POST", "/v1/orders", BUY)
    assert refused.status_code == 403
    assert error_of(refused)["detail"] == "auto_mode_trading_restricted"
    _set_mode(alice, "advanced")
    placed = alice.call("POST", "/v1/orders", BUY | {"client_order_id": "after-switch"})
    assert placed.status_code == 201, placed.text
    settings = _settings(alice)
    assert settings["account_mode"] == "advanced"
    assert settings["auto_transfer_enabled"] is False and settings["auto_buy_enabled"] is False
    assert alice.data("GET", "/v1/me")["account_mode"] == "advanced"
    _set_mode(alice, "easy")
    again = alice.call("POST", "/v1/orders", BUY | {"client_order_id": "after-switch-back"})
    assert again.status_code == 403
    assert error_of(again)["detail"] == "auto_mode_trading_restricted"
    assert _settings(alice)["auto_transfer_enabled"] is True


def test_easy_mode_refuses_turning_its_managed_settings_off(server: Server) -> None:
    alice = open_account(server)
    for path, body in (
        ("auto-transfer", {"auto_transfer_enabled": False}),
        ("auto-buy", {"auto_buy_enabled": False}),
        ("auto-buy", {"auto_top_up_enabled": False}),
    ):
        response = alice.call("PATCH", f"{SETTINGS}/{path}", body)
        assert response.status_code == 403, response.text
        assert error_of(response)["code"] == "mode_managed_setting"
    toggled = alice.call("POST", f"{SETTINGS}/auto-top-up/toggle")
    assert toggled.status_code == 403 and error_of(toggled)["code"] == "mode_managed_setting"
    # Writes that agree with the mode are accepted and change nothing.
    kept = alice.data("PATCH", f"{SETTINGS}/auto-transfer", {"auto_transfer_enabled": True})
    assert kept["auto_transfer_enabled"] is True
    settings = _settings(alice)
    assert settings["auto_transfer_enabled"] is True and settings["auto_buy_enabled"] is True


def test_advanced_mode_leaves_auto_transfer_and_auto_buy_free(server: Server) -> None:
    bob = open_account(server, mode="advanced")
    on = bob.data("PATCH", f"{SETTINGS}/auto-transfer", {"auto_transfer_enabled": True})
    assert on["auto_transfer_enabled"] is True
    back = bob.data("PATCH", f"{SETTINGS}/auto-transfer", {"auto_transfer_override": None})
    assert back["auto_transfer_enabled"] is False  # the mode's default
    buy = bob.data("PATCH", f"{SETTINGS}/auto-buy", {"auto_top_up_enabled": True})
    assert buy["auto_buy_enabled"] is True and buy["auto_top_up_enabled"] is True
    flipped = bob.data("POST", f"{SETTINGS}/auto-top-up/toggle")
    assert flipped["auto_buy_enabled"] is False


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        ("account-mode", "POST", {"mode": "expert"}),
        ("account-mode", "POST", {}),
        ("account-mode", "POST", {"mode": "easy", "x": 1}),
        ("auto-transfer", "PATCH", {}),
        ("auto-transfer", "PATCH", {"auto_transfer_enabled": "yes"}),
        ("auto-transfer", "PATCH", {"auto_transfer_override": True}),
        ("auto-buy", "PATCH", {"auto_buy_enabled": 1}),
        ("auto_reload", "PATCH", {}),
        ("auto_reload", "PATCH", {"enabled": True}),
        ("auto_reload", "PATCH", {"threshold": 5}),
        ("auto_reload", "PATCH", {"threshold": "-5"}),
        ("auto_reload", "PATCH", {"amount": "1e3"}),
        ("auto_reload", "PATCH", {"amount": "0"}),
        ("auto_reload", "PATCH", {"amount": "1.0000001"}),
        ("auto_reload", "PATCH", {"amount": "99999999999"}),
        ("auto_reload", "PATCH", {"amount": "50", "monthly_limit": "20"}),
        ("auto_reload", "PATCH", {"enabled": "true"}),
        ("auto_reload", "PATCH", {"currency": "EUR"}),
    ],
)
def test_bad_settings_writes_are_422_and_change_nothing(
    server: Server, path: str, method: str, body: Any
) -> None:
    alice = open_account(server, mode="advanced")
    before = _settings(alice)
    response = alice.call(method, f"{SETTINGS}/{path}", body)
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == "validation_error"
    assert _settings(alice) == before


def test_auto_reload_is_stored_and_validated_against_what_is_stored(server: Server) -> None:
    alice = open_account(server)
    body = {"enabled": True, "threshold": "5", "amount": "20.50", "monthly_limit": "100"}
    data = alice.data("PATCH", f"{SETTINGS}/auto_reload", body)
    assert data["auto_reload_enabled"] is True
    assert data["auto_reload_threshold_usd"] == "5.000"
    assert data["auto_reload_amount_usd"] == "20.500"
    assert data["auto_reload_monthly_limit_usd"] == "100.000"
    # A partial write is checked against the stored rest: 200 > the stored 100 limit.
    refused = alice.call("PATCH", f"{SETTINGS}/auto_reload", {"amount": "200"})
    assert refused.status_code == 422 and "monthly_limit" in error_of(refused)["detail"]
    cleared = alice.call("PATCH", f"{SETTINGS}/auto_reload", {"threshold": None})
    assert cleared.status_code == 422  # not while enabled
    off = alice.data("PATCH", f"{SETTINGS}/auto_reload", {"enabled": False, "threshold": None})
    assert off["auto_reload_enabled"] is False and off["auto_reload_threshold_usd"] is None
    assert off["auto_reload_amount_usd"] == "20.500"


# -- money out ----------------------------------------------------------------------------------


def test_a_withdrawal_moves_usd_out_and_refusals_are_422(server: Server) -> None:
    alice = open_account(server, deposit="100")
    record = alice.data("POST", "/v1/withdrawals", {"amount_usd": "12.50"}, 201)
    assert record["amount_usd"] == "12.500" and record["status"] == "completed"
    assert record["withdrawal_id"].startswith("wd_") and record["created_at"].endswith("Z")
    assert record["usd_available"] == "87.500"
    too_much = alice.call("POST", "/v1/withdrawals", {"amount_usd": "87.51"})
    assert too_much.status_code == 422 and error_of(too_much)["code"] == "insufficient_funds"
    for bad in ({"amount_usd": 5}, {"amount_usd": "-1"}, {}, {"amount_usd": "1", "to": "x"}):
        response = alice.call("POST", "/v1/withdrawals", bad)
        assert response.status_code == 422 and error_of(response)["code"] == "validation_error"
    rest = alice.data("POST", "/v1/withdrawals", {"amount_usd": "87.5"}, 201)
    assert rest["usd_available"] == "0.000"
    audit = server.admin("GET", "/v1/admin/audit").json()["data"]
    assert audit["balanced"] is True


def test_only_suppliers_take_payouts(server: Server) -> None:
    consumer = open_account(server, deposit="10")
    refused = consumer.call("POST", "/v1/payouts", {"amount_usd": "1"})
    assert refused.status_code == 422 and error_of(refused)["code"] == "not_a_supplier"
    supplier = open_account(server, deposit="10", supplier=True)
    paid = supplier.data("POST", "/v1/payouts", {"amount_usd": "4"}, 201)
    assert paid["payout_id"].startswith("po_") and paid["usd_available"] == "6.000"


# -- restart ------------------------------------------------------------------------------------


def test_settings_survive_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = Server(home)
    try:
        alice = open_account(first, deposit="10")
        _set_mode(alice, "advanced")
        alice.data("PATCH", f"{SETTINGS}/auto-transfer", {"auto_transfer_enabled": True})
        alice.data("PATCH", f"{SETTINGS}/auto-buy", {"auto_buy_enabled": True})
        body = {"enabled": True, "threshold": "1", "amount": "2", "monthly_limit": "3"}
        alice.data("PATCH", f"{SETTINGS}/auto_reload", body)
        before = _settings(alice)
        first.stop()
    finally:
        first.kill()
    second = Server(home)
    try:
        again = Account(second, alice.account_id, alice.signer)
        assert _settings(again) == before
        assert before["account_mode"] == "advanced" and before["auto_transfer_enabled"] is True
        assert again.call("POST", "/v1/orders", BUY).status_code == 201
    finally:
        second.kill()

"""The operator's self-service routes and CLI on a real server: any account, by its id."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from live_server import GRIDMARKET, Server, clean_env
from signed_client import error_of, open_account

from gridmarket.auth.signing import Signer, generate_keypair


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("adminkeys") / "home")
    try:
        yield running
    finally:
        running.kill()


def _path(account_id: str, rest: str) -> str:
    return f"/v1/admin/accounts/{account_id}/{rest}"


def _data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    environment = clean_env() | {
        "GRIDMARKET_SERVER": server.url,
        "GRIDMARKET_HOME": str(server.data_dir),
    }
    return subprocess.run(
        [str(GRIDMARKET), "admin", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli_json(server: Server, *args: str) -> Any:
    done = cli(server, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_operator_manages_an_accounts_consumption_keys(server: Server) -> None:
    alice = open_account(server)
    made = _data(
        server.admin("POST", _path(alice.account_id, "api-keys"), json={"api_key": {"name": "op"}}),
        201,
    )
    assert made["key"].startswith("gm-")
    # The account sees the key the operator made for it.
    assert made["id"] in [k["id"] for k in alice.data("GET", "/v1/api-keys")]
    listed = _data(server.admin("GET", _path(alice.account_id, "api-keys")))
    assert made["id"] in [k["id"] for k in listed]
    revoked = _data(server.admin("DELETE", _path(alice.account_id, f"api-keys/{made['id']}")))
    assert revoked["id"] == made["id"] and revoked["is_active"] is False
    assert made["id"] not in [k["id"] for k in alice.data("GET", "/v1/api-keys")]


def test_another_accounts_key_is_404_through_the_admin_api_too(server: Server) -> None:
    alice, bob = open_account(server), open_account(server)
    made = alice.data("POST", "/v1/api-keys", {"api_key": {"name": "a"}}, 201)
    wrong = server.admin("DELETE", _path(bob.account_id, f"api-keys/{made['id']}"))
    assert wrong.status_code == 404
    assert made["id"] in [k["id"] for k in alice.data("GET", "/v1/api-keys")]


def test_the_operator_may_revoke_the_last_signing_key_and_it_stops_at_once(
    server: Server,
) -> None:
    alice = open_account(server)
    assert alice.call("GET", "/v1/me").status_code == 200
    fingerprint = quote(alice.signer.fingerprint, safe="")
    _data(server.admin("DELETE", _path(alice.account_id, f"signing-keys/{fingerprint}")))
    assert alice.call("GET", "/v1/me").status_code == 401
    # A new pair made by the operator: its private key is returned once, and it signs.
    made = _data(
        server.admin(
            "POST", _path(alice.account_id, "signing-keys"), json={"signing_key": {"label": "new"}}
        ),
        201,
    )
    signer = Signer(base64.b64decode(made["private_key"]))
    assert signer.fingerprint == made["fingerprint"]
    assert alice.with_signer(signer).call("GET", "/v1/me").status_code == 200


def test_the_operator_registers_a_given_public_key(server: Server) -> None:
    alice = open_account(server)
    seed, public = generate_keypair()
    body = {"signing_key": {"label": "hsm", "public_key": base64.b64encode(public).decode()}}
    made = _data(server.admin("POST", _path(alice.account_id, "signing-keys"), json=body), 201)
    assert "private_key" not in made
    assert alice.with_signer(Signer(seed)).call("GET", "/v1/me").status_code == 200


def test_operator_settings_follow_the_mode_rules(server: Server) -> None:
    alice = open_account(server, deposit="10")
    path = _path(alice.account_id, "settings")
    assert _data(server.admin("GET", path))["account_mode"] == "easy"
    refused = server.admin("PATCH", path, json={"auto_transfer_enabled": False})
    assert refused.status_code == 403 and error_of(refused)["code"] == "mode_managed_setting"
    both = {"mode": "advanced", "auto_transfer_enabled": True, "auto_reload": {"amount": "5"}}
    data = _data(server.admin("PATCH", path, json=both))
    assert data["account_mode"] == "advanced" and data["auto_transfer_enabled"] is True
    assert data["auto_buy_enabled"] is False and data["auto_reload_amount_usd"] == "5.000"
    assert alice.data("GET", "/v1/self/system-settings") == data
    # Half-bad: nothing changes.
    bad = server.admin("PATCH", path, json={"mode": "easy", "auto_buy_enabled": False})
    assert bad.status_code == 403
    assert _data(server.admin("GET", path)) == data
    for body in ({"mode": "x"}, {"auto_buy_enabled": "no"}, {"other": 1}, {"auto_reload": 3}):
        response = server.admin("PATCH", path, json=body)
        assert response.status_code == 422, (body, response.text)


def test_operator_withdrawals_and_payouts(server: Server) -> None:
    alice = open_account(server, deposit="10")
    done = _data(
        server.admin("POST", _path(alice.account_id, "withdrawals"), json={"amount_usd": "3"}),
        201,
    )
    assert done["usd_available"] == "7.000"
    refused = server.admin("POST", _path(alice.account_id, "payouts"), json={"amount_usd": "1"})
    assert refused.status_code == 422 and error_of(refused)["code"] == "not_a_supplier"


def test_unknown_accounts_are_404_and_the_token_is_required(server: Server) -> None:
    for method, rest in (
        ("GET", "api-keys"),
        ("GET", "signing-keys"),
        ("GET", "settings"),
        ("POST", "withdrawals"),
    ):
        response = server.admin(method, _path("acct_nobody", rest), json={"amount_usd": "1"})
        assert response.status_code == 404, response.text
        assert error_of(response)["code"] == "account_not_found"
        anonymous = httpx.request(method, f"{server.url}{_path('acct_nobody', rest)}", timeout=10)
        assert anonymous.status_code == 401


# -- the CLI ------------------------------------------------------------------------------------


def test_the_cli_manages_keys_settings_and_money(server: Server) -> None:
    alice = open_account(server, deposit="20", supplier=True)
    account = alice.account_id
    made = cli_json(server, "keys", "create", account, "--name", "cli", "--spend-cap-tokens", "9")
    assert made["key"].startswith("gm-") and made["spend_cap_tokens"] == 9
    assert made["id"] in [k["id"] for k in cli_json(server, "keys", "list", account)]
    assert cli_json(server, "keys", "revoke", account, made["id"])["is_active"] is False
    assert made["id"] not in [k["id"] for k in cli_json(server, "keys", "list", account)]

    added = cli_json(server, "signing-keys", "add", account, "--label", "cli")
    listed = cli_json(server, "signing-keys", "list", account)
    assert {k["fingerprint"] for k in listed} == {alice.signer.fingerprint, added["fingerprint"]}
    cli_json(server, "signing-keys", "revoke", account, added["key_id"])
    assert len(cli_json(server, "signing-keys", "list", account)) == 1

    settings = cli_json(server, "settings", "set", account, "--mode", "advanced", "--auto-buy")
    assert settings["account_mode"] == "advanced" and settings["auto_buy_enabled"] is True
    assert cli_json(server, "settings", "show", account) == settings

    assert cli_json(server, "withdraw", account, "5")["usd_available"] == "15.000"
    assert cli_json(server, "payout", account, "5")["usd_available"] == "10.000"
    text = cli(server, "keys", "list", account)
    assert text.returncode == 0 and text.stdout.strip()


def test_cli_failures_are_one_line_and_exit_1(server: Server) -> None:
    alice = open_account(server)
    for args in (
        ("withdraw", alice.account_id, "1000"),
        ("settings", "set", alice.account_id, "--no-auto-transfer"),
        ("keys", "list", "acct_nobody"),
        ("settings", "set", alice.account_id),
    ):
        done = cli(server, *args, "--json")
        assert done.returncode == 1, (args, done.stdout)
        assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr

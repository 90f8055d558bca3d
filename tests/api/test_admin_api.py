"""The admin API on a real server, driven by `gridmarket admin`: accounts, deposits, audit, auth."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import GRIDMARKET, Server, clean_env, free_port

from gridmarket.auth.keys import hash_consumption_key
from gridmarket.auth.signing import Signer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("admin") / "home")
    try:
        yield running
    finally:
        running.kill()


def cli(
    server: Server, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(GRIDMARKET), "admin", *args]
    environment = clean_env() | {
        "GRIDMARKET_SERVER": server.url,
        "GRIDMARKET_HOME": str(server.data_dir),
    }
    return subprocess.run(
        command, env=environment | (env or {}), capture_output=True, text=True, timeout=60
    )


def _create(server: Server, **body: Any) -> dict[str, Any]:
    response = server.admin("POST", "/v1/admin/accounts", json={"name": "n", **body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_create_deposit_audit_through_the_cli(server: Server) -> None:
    created = cli(server, "create-account", "alice", "--deposit-usd", "12.5", "--json")
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    assert set(data) == {"account_id", "consumption_key", "signing_key"}
    assert set(data["signing_key"]) == {"private_key", "public_key", "fingerprint"}
    signer = Signer(base64.b64decode(data["signing_key"]["private_key"]))
    assert base64.b64encode(signer.public_key_raw).decode() == data["signing_key"]["public_key"]
    assert signer.fingerprint == data["signing_key"]["fingerprint"]

    deposited = cli(server, "deposit", data["account_id"], "0.000001", "--json")
    assert deposited.returncode == 0, deposited.stderr
    assert json.loads(deposited.stdout)["usd_available"] == "12.500001"

    audited = cli(server, "audit", "--json")
    assert audited.returncode == 0, audited.stderr
    report = json.loads(audited.stdout)
    assert report["balanced"] is True
    assert report["sums_by_asset"] == {"usd": 0}
    human = cli(server, "audit")
    assert human.returncode == 0 and "balanced" in human.stdout


def test_cli_failures_are_one_line_and_exit_1(server: Server, tmp_path: Path) -> None:
    unknown = cli(server, "deposit", "acct_nobody", "5")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().count("\n") == 0
    assert "not_found" in unknown.stderr and "HTTP 404" in unknown.stderr

    no_token = cli(server, "audit", env={"GRIDMARKET_HOME": str(tmp_path)})
    assert no_token.returncode == 1 and "no operator token" in no_token.stderr

    unreachable = cli(server, "audit", "--server", f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def test_modes_and_suppliers_are_registered(server: Server) -> None:
    made = _create(server, name="acme", supplier=True, mode="advanced")
    listed = server.admin("GET", "/v1/admin/accounts", params={"limit": 100}).json()["data"]
    row = next(r for r in listed if r["account_id"] == made["account_id"])
    assert row["name"] == "acme" and row["supplier"] is True and row["mode"] == "advanced"


def test_listing_pages_with_a_cursor(server: Server) -> None:
    for _ in range(3):
        _create(server)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = server.admin("GET", "/v1/admin/accounts", params=params).json()
        assert len(page["data"]) <= 2
        seen += [row["account_id"] for row in page["data"]]
        cursor = page["next"]
        if cursor is None:
            break
    everything = server.admin("GET", "/v1/admin/accounts", params={"limit": 100}).json()
    assert seen == sorted(seen) == [row["account_id"] for row in everything["data"]]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}, {"Authorization": ""}],
    ids=["missing", "wrong", "other-scheme", "empty"],
)
def test_without_the_operator_token_every_route_is_a_401(
    server: Server, headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/v1/admin/audit"),
        ("GET", "/v1/admin/accounts"),
        ("POST", "/v1/admin/accounts"),
        ("POST", "/v1/admin/accounts/x/deposits"),
    ]:
        response = httpx.request(
            method, f"{server.url}{path}", headers=headers, json={"name": "x"}, timeout=10
        )
        assert response.status_code == 401, (method, path)
        errors = response.json()["errors"]
        assert errors["code"] == "auth_failed"
        assert errors["message"] == errors["detail"]


def test_the_token_is_checked_before_the_body_is_read(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/admin/accounts",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "deposit_usd": "-1"},
        {"name": "x", "deposit_usd": "0"},
        {"name": "x", "deposit_usd": "1.0000001"},
        {"name": "x", "deposit_usd": "1e3"},
        {"name": "x", "deposit_usd": "NaN"},
        {"name": "x", "deposit_usd": " 1"},
        {"name": "x", "deposit_usd": 1.5},
        {"name": "x", "deposit_usd": 1},
        {"name": "x", "deposit_usd": "9" * 12 + ".999999"},  # above the core's move limit
        {"name": "x", "mode": "auto"},
        {"name": "x", "supplier": "yes"},
        {"name": "x", "colour": "red"},
        {"name": ""},
        {"name": "x" * 101},
        {"name": 5},
        {},
        [],
    ],
)
def test_bad_account_bodies_are_422_in_the_envelope(server: Server, body: Any) -> None:
    response = server.admin("POST", "/v1/admin/accounts", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors["code"] == "validation_error" and errors["message"] == errors["detail"]


def test_bad_deposits_are_422_and_unknown_accounts_404(server: Server) -> None:
    account_id = _create(server)["account_id"]
    path = f"/v1/admin/accounts/{account_id}/deposits"
    for body in [{"amount_usd": "0.0000001"}, {"amount_usd": 2}, {}, {"amount_usd": "1", "x": 1}]:
        assert server.admin("POST", path, json=body).status_code == 422, body
    missing = server.admin(
        "POST", "/v1/admin/accounts/acct_missing/deposits", json={"amount_usd": "1"}
    )
    assert missing.status_code == 404
    assert missing.json()["errors"]["code"] == "not_found"
    assert server.admin("GET", "/v1/admin/accounts", params={"limit": 0}).status_code == 422
    assert server.admin("GET", "/v1/admin/accounts", params={"limit": 101}).status_code == 422
    assert server.admin("GET", "/v1/admin/accounts", params={"cursor": "c" * 65}).status_code == 422


def test_no_secret_is_stored_in_plaintext(server: Server) -> None:
    made = _create(server, deposit_usd="1")
    secrets = [made["consumption_key"], made["signing_key"]["private_key"]]
    secrets.append(made["consumption_key"].removeprefix("gm-"))
    found_hash = False
    with sqlite3.connect(server.data_dir / "gridmarket.db") as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in connection.execute(f"SELECT * FROM {table}"):
                for value in row:
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    assert not any(secret in text for secret in secrets), table
                    found_hash |= text == hash_consumption_key(made["consumption_key"])
    assert "consumption_keys" in tables and found_hash


def test_the_token_file_is_0600_and_survives_restarts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = Server(home)
    try:
        token = first.token
        assert (home / "operator-token").stat().st_mode & 0o777 == 0o600
        assert len(token) >= 43
        made = _create(first)
    finally:
        first.stop()
    second = Server(home)
    try:
        assert second.token == token
        listed = second.admin("GET", "/v1/admin/accounts").json()["data"]
        assert [row["account_id"] for row in listed] == [made["account_id"]]
        assert second.admin("GET", "/v1/admin/audit").json()["data"]["balanced"] is True
    finally:
        second.stop()

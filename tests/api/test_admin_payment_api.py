"""The operator's payment-method endpoint on a real server, and `gridmarket admin payment-method`:
set the ledger-only allowance or the Stripe ids, clear a stored decline, refuse bad input and
strangers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from live_server import GRIDMARKET, Server, clean_env

PATH = "/v1/admin/accounts/{}/payment-method"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("payment") / "home")
    try:
        yield running
    finally:
        running.kill()


def _account(server: Server) -> str:
    response = server.admin("POST", "/v1/admin/accounts", json={"name": "payer"})
    assert response.status_code == 201, response.text
    account_id: str = response.json()["data"]["account_id"]
    return account_id


def _method(server: Server, account_id: str) -> dict[str, Any]:
    response = server.admin("GET", PATH.format(account_id))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _decline(server: Server, account_id: str) -> None:
    """A decline as the AutoBuyer stores it when a reload charge is refused."""
    with sqlite3.connect(server.data_dir / "gridmarket.db") as connection:
        connection.execute(
            "UPDATE payment_methods SET declined_at_ms = 1764547200000,"
            " decline_reason = 'allowance_exhausted' WHERE account_id = ?",
            (account_id,),
        )


def test_set_the_allowance_and_clear_a_decline(server: Server) -> None:
    account_id = _account(server)
    other_id = _account(server)
    assert _method(server, account_id) | {"updated_at": None} == {
        "account_id": account_id,
        "allowance_usd": None,
        "stripe_customer": None,
        "stripe_payment_method": None,
        "declined": False,
        "decline_reason": None,
        "declined_at": None,
        "updated_at": None,
    }

    response = server.admin("POST", PATH.format(account_id), json={"allowance_usd": "25.5"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["allowance_usd"], data["declined"]) == ("25.500000", False)
    assert data["updated_at"].endswith("Z")

    _decline(server, account_id)
    declined = _method(server, account_id)
    assert (declined["declined"], declined["decline_reason"]) == (True, "allowance_exhausted")
    assert declined["declined_at"] == "2025-12-01T00:00:00.000Z"

    # No allowance given: the allowance stays, the decline goes.
    cleared = server.admin("POST", PATH.format(account_id)).json()["data"]
    assert (cleared["allowance_usd"], cleared["declined"], cleared["declined_at"]) == (
        "25.500000",
        False,
        None,
    )
    emptied = server.admin("POST", PATH.format(account_id), json={"allowance_usd": "0"})
    assert emptied.json()["data"]["allowance_usd"] == "0.000000"
    # The other account was never touched.
    assert _method(server, other_id)["allowance_usd"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"allowance_usd": 5},
        {"allowance_usd": "-1"},
        {"allowance_usd": "1.0000001"},
        {"allowance_usd": "ten"},
        {"allowance_usd": "5", "card": "4242"},
        [],
        {"stripe_customer": "cus_A1"},
        {"stripe_payment_method": "pm_card_visa"},
        {"stripe_customer": "cust_A1", "stripe_payment_method": "pm_card_visa"},
        {"stripe_customer": "cus_A-1", "stripe_payment_method": "pm_card_visa"},
        {"stripe_customer": "cus_", "stripe_payment_method": "pm_card_visa"},
        {"stripe_customer": "cus_A1", "stripe_payment_method": "card_visa"},
        {"stripe_customer": "cus_A1", "stripe_payment_method": "pm_card visa"},
        {"stripe_customer": "cus_A1\n", "stripe_payment_method": "pm_card_visa"},
        {"stripe_customer": "cus_" + "A" * 252, "stripe_payment_method": "pm_card_visa"},
        {"stripe_customer": 7, "stripe_payment_method": "pm_card_visa"},
    ],
)
def test_bad_bodies_are_422_and_change_nothing(server: Server, body: object) -> None:
    account_id = _account(server)
    server.admin("POST", PATH.format(account_id), json={"allowance_usd": "7"})

    response = server.admin("POST", PATH.format(account_id), json=body)

    assert response.status_code == 422, response.text
    assert response.json()["errors"]["code"] == "validation_error"
    kept = _method(server, account_id)
    assert (kept["allowance_usd"], kept["stripe_customer"]) == ("7.000000", None)


def test_set_the_stripe_method_keeps_the_allowance_and_clears_a_decline(server: Server) -> None:
    account_id = _account(server)
    server.admin("POST", PATH.format(account_id), json={"allowance_usd": "3"})
    _decline(server, account_id)
    longest = "cus_" + "A" * 251  # 255 characters, Stripe's longest id

    body = {"stripe_customer": longest, "stripe_payment_method": "pm_1MqLiJLkdIwHu7ix"}
    response = server.admin("POST", PATH.format(account_id), json=body)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["stripe_customer"], data["stripe_payment_method"]) == (
        longest,
        "pm_1MqLiJLkdIwHu7ix",
    )
    assert (data["allowance_usd"], data["declined"], data["decline_reason"]) == (
        "3.000000",
        False,
        None,
    )
    assert _method(server, account_id)["stripe_payment_method"] == "pm_1MqLiJLkdIwHu7ix"


def test_unknown_accounts_and_strangers_are_refused(server: Server) -> None:
    missing = server.admin("POST", PATH.format("acct_nobody"), json={"allowance_usd": "1"})
    assert missing.status_code == 404
    assert server.admin("GET", PATH.format("acct_nobody")).status_code == 404
    account_id = _account(server)
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        response = httpx.post(
            server.url + PATH.format(account_id),
            json={"allowance_usd": "1000"},
            headers=headers,
            timeout=10,
        )
        assert response.status_code == 401
    assert _method(server, account_id)["allowance_usd"] is None


def test_the_cli_sets_shows_and_clears(server: Server) -> None:
    account_id = _account(server)
    env = clean_env() | {"GRIDMARKET_SERVER": server.url, "GRIDMARKET_HOME": str(server.data_dir)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(GRIDMARKET), "admin", "payment-method", account_id, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    done = cli("--allowance-usd", "12", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["allowance_usd"] == "12.000000"
    _decline(server, account_id)
    shown = cli("--show")
    assert shown.returncode == 0, shown.stderr
    assert "allowance 12.000000 USD; DECLINED (allowance_exhausted)" in shown.stdout
    cleared = cli()
    assert cleared.returncode == 0
    assert "allowance 12.000000 USD; not declined" in cleared.stdout
    refused = cli("--allowance-usd", "lots")
    assert refused.returncode == 1
    assert "validation_error" in refused.stderr

    _decline(server, account_id)
    stripe = cli("--stripe-customer", "cus_Cli1", "--stripe-payment-method", "pm_card_visa")
    assert stripe.returncode == 0, stripe.stderr
    assert "stripe cus_Cli1 pm_card_visa; not declined" in stripe.stdout
    assert "allowance 12.000000 USD" in stripe.stdout
    shown = cli("--show", "--json")
    assert json.loads(shown.stdout)["stripe_customer"] == "cus_Cli1"
    alone = cli("--stripe-customer", "cus_Cli2")
    assert alone.returncode == 1
    assert "go together" in alone.stderr

"""Substitution receivables on a real server: a supplier that could not pay the substitute of
its lot owes the operator, which the admin API lists and settles, the supplier's liability
shows, and which refuses its issuance and payouts until a deposit and sale proceeds pay it.
The operator's CLI (`gridmarket admin receivables`, `settle-receivable`) does the same."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_harness import Party, audit_balanced, open_party, rebind
from live_server import Server
from signed_client import error_of
from test_admin_api import cli

from gridmarket.core.commands import (
    Command,
    CommitTokens,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    SettleCall,
    TransferIssuanceToTrading,
    TransferToConsumption,
    Withdraw,
)
from gridmarket.core.events import OrderRejected, Rejected
from gridmarket.core.ids import AccountId, CallId, InstrumentId
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings

TP = InstrumentId("text-prime")
UNIT = 1_000_000


def _seed(data_dir: Path, supplier: str, substitute: str, buyer: str) -> None:
    """`supplier` sells a unit at 2.000 to `buyer`, takes its 2 USD out, and `substitute`
    delivers the whole unit: `supplier` owes the operator 2 USD."""
    s, t, b = AccountId(supplier), AccountId(substitute), AccountId(buyer)
    commands: list[Command] = [
        SetSupplierCapacity(s, TP, 10**9),
        IssueUnits(s, TP, 2),
        TransferIssuanceToTrading(s, TP, 2),
        PlaceOrder(s, TP, "sell", "limit", 1, 2_000_000),
        PlaceOrder(b, TP, "buy", "market", 1, None),
        TransferToConsumption(b, TP, 1),
        Withdraw(s, 2_000_000),
        CommitTokens(CallId("sub1"), b, TP, UNIT),
        SettleCall(CallId("sub1"), UNIT, request_id="sub1", supplier_id=t),
    ]

    async def seed() -> None:
        url = Settings.resolve(data_dir=data_dir, environ={}).database_url
        async with MarketService.from_url(url, tune_gc=False) as market:
            for command in commands:
                outcome = await market.submit(command)
                bad = [e for e in outcome.events if isinstance(e, Rejected | OrderRejected)]
                assert not bad, (command, bad)

    asyncio.run(seed())


class World:
    def __init__(self, home: Path) -> None:
        first = Server(home)
        self.supplier = open_party(first, supplier=True)
        self.substitute = open_party(first, supplier=True)
        self.buyer = open_party(first, deposit="10")
        first.stop()
        _seed(home, self.supplier.account_id, self.substitute.account_id, self.buyer.account_id)
        self.server = Server(home)
        self.supplier, self.substitute, self.buyer = (
            rebind(p, self.server) for p in (self.supplier, self.substitute, self.buyer)
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = World(tmp_path_factory.mktemp("receivables") / "home")
    try:
        yield made
    finally:
        made.server.kill()


def _admin(world: World, method: str, path: str, status: int = 200, **kw: Any) -> dict[str, Any]:
    response = world.server.admin(method, path, **kw)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _issue(party: Party) -> httpx.Response:
    return party.account.call(
        "POST", "/v1/supply-issuances", {"instrument_id": str(TP), "quantity": 1}
    )


def test_a_receivable_is_listed_shown_blocks_and_is_paid_back(world: World) -> None:
    supplier = world.supplier.account_id
    listed = _admin(world, "GET", "/v1/admin/receivables")
    assert listed["data"] == [
        {"account_id": supplier, "receivable_usd": "2.000000", "receivable_usd_micros": 2_000_000}
    ]
    assert listed["total_usd_micros"] == 2_000_000
    shown = cli(world.server, "receivables")
    assert shown.returncode == 0, shown.stderr
    assert f"{supplier}  owes 2.000000 USD" in shown.stdout
    assert "total owed: 2.000000 USD" in shown.stdout
    assert json.loads(cli(world.server, "receivables", "--json").stdout) == listed["data"]
    [row] = world.supplier.account.data("GET", "/v1/supplier-liability")
    assert (row["receivable_usd"], row["outstanding"]) == ("2.000", "0")  # delivered by another
    substitute_usd = world.substitute.account.data("GET", "/v1/currency-trading-accounts/USD")
    assert substitute_usd["available_balance"] == "2.000"  # paid in full, by the operator

    refused = _issue(world.supplier)
    assert refused.status_code == 422, refused.text
    assert error_of(refused)["code"] == "receivable_outstanding"
    assert "2.000 USD" in error_of(refused)["detail"]
    payout = world.supplier.account.call("POST", "/v1/payouts", {"amount_usd": "1"})
    assert payout.status_code == 422 and error_of(payout)["code"] == "receivable_outstanding"
    settle = f"/v1/admin/accounts/{supplier}/receivable/settle"
    nothing = _admin(world, "POST", settle, 422)
    assert nothing["errors"]["code"] == "insufficient_funds"
    refused_cli = cli(world.server, "settle-receivable", supplier)
    assert refused_cli.returncode == 1 and refused_cli.stdout == ""
    assert "insufficient_funds" in refused_cli.stderr and refused_cli.stderr.count("\n") == 1

    # A deposit pays first; the proceeds of a sale pay the rest when the operator settles.
    deposited = _admin(
        world, "POST", f"/v1/admin/accounts/{supplier}/deposits", 201, json={"amount_usd": "0.5"}
    )["data"]
    assert (deposited["usd_available"], deposited["receivable_usd"]) == ("0.000000", "1.500000")
    ask = {"market_id": str(TP), "side": "sell", "type": "limit", "quantity": "1"}
    world.supplier.account.data("POST", "/v1/orders", ask | {"price": "2.000"}, status=201)
    bid = {"market_id": str(TP), "side": "buy", "type": "market", "quantity": "1"}
    world.buyer.account.data("POST", "/v1/orders", bid, status=201)
    settled = cli(world.server, "settle-receivable", supplier, "--json")
    assert settled.returncode == 0, settled.stderr
    paid = json.loads(settled.stdout)
    assert (paid["paid_usd"], paid["receivable_usd"]) == ("1.500000", "0.000000")
    assert paid["usd_available"] == "0.500000"
    assert _admin(world, "POST", settle, 422)["errors"]["code"] == "no_receivable"
    assert _admin(world, "GET", "/v1/admin/receivables")["data"] == []
    assert "no supplier owes anything" in cli(world.server, "receivables").stdout
    assert _issue(world.supplier).status_code == 201
    assert audit_balanced(world.server)


def test_the_receivable_routes_need_the_operator_and_a_known_account(world: World) -> None:
    assert _admin(world, "POST", "/v1/admin/accounts/acct_nobody/receivable/settle", 404)
    anonymous = httpx.get(f"{world.server.url}/v1/admin/receivables", timeout=10)
    assert anonymous.status_code == 401

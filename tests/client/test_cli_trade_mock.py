"""`gridmarket balances`, `transfer` and `trades` (own fills) over endpoints still being built:
the CLI run in-process against a scripted server shaped as the contract says."""

from __future__ import annotations

import base64
import functools
import json

import httpx
import pytest
from fake_grid import NOW_S, SEED, FakeGrid
from typer.testing import CliRunner

from gridmarket import cli_trade
from gridmarket.cli import app
from gridmarket.client import Client

USD_ROW = {
    "account_id": "ta_usd",
    "instrument_id": "USD",
    "currency": "USD",
    "total_balance": "100.000000",
    "available_balance": "90.000000",
    "locked_balance": "10.000000",
    "updated_at": "2026-01-01T00:00:00Z",
}
CONSUMPTION_ROW = {
    "account_id": "ca_1",
    "user_id": "acct_1",
    "instrument_id": "text-prime",
    "status": "active",
    "available_balance": "2.000000",
    "committed_balance": "0.000000",
    "total_balance": "2.000000",
    "total_deposits": "2",
    "total_withdrawals": "0",
    "total_commitments": "0",
    "total_transfers_in": "2",
    "total_transfers_out": "0",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}


@pytest.fixture
def cli(grid: FakeGrid, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(
        cli_trade,
        "Client",
        # The fake checks signatures against a fixed clock: sign with the same one.
        functools.partial(Client, transport=httpx.MockTransport(grid.handle), clock=lambda: NOW_S),
    )
    monkeypatch.setenv("GRIDMARKET_SERVER", "http://grid.test")
    monkeypatch.delenv("GRIDMARKET_KEY_FILE", raising=False)
    monkeypatch.setenv("GRIDMARKET_SIGNING_KEY", base64.b64encode(SEED).decode())
    return CliRunner()


def test_balances_json_has_both_kinds_with_exact_decimals(grid: FakeGrid, cli: CliRunner) -> None:
    grid.on("GET", "/v1/trading-accounts", body={"data": [USD_ROW]})
    grid.on("GET", "/v1/consumption-accounts", body={"data": [CONSUMPTION_ROW]})
    result = cli.invoke(app, ["balances", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["trading_accounts"][0]["available_balance"] == "90.000000"
    assert out["trading_accounts"][0]["currency"] == "USD"
    assert out["consumption_accounts"][0]["available_balance"] == "2.000000"


def test_balances_table(grid: FakeGrid, cli: CliRunner) -> None:
    grid.on("GET", "/v1/trading-accounts", body={"data": [USD_ROW]})
    grid.on("GET", "/v1/consumption-accounts", body={"data": []})
    result = cli.invoke(app, ["balances"])
    assert result.exit_code == 0, result.output
    assert "90.000000" in result.stdout and "USD" in result.stdout


def test_transfer_prints_the_transfer(grid: FakeGrid, cli: CliRunner) -> None:
    body = {"status": "success", "transfer_id": "tr_9"}
    grid.on("POST", "/v1/transfers/trading-to-consumption", 202, body)
    result = cli.invoke(app, ["transfer", "text-prime", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["transfer_id"] == "tr_9"
    assert json.loads(grid.last.content) == {"instrument_id": "text-prime", "quantity": 3}


def test_transfer_refused_is_one_line(grid: FakeGrid, cli: CliRunner) -> None:
    refusal = {"errors": {"detail": "not enough units", "code": "insufficient_units"}}
    grid.on("POST", "/v1/transfers/trading-to-consumption", 422, refusal)
    result = cli.invoke(app, ["transfer", "text-prime", "3"])
    assert result.exit_code == 1
    assert result.stderr == "error: not enough units (insufficient_units, HTTP 422)\n"


def test_own_trades(grid: FakeGrid, cli: CliRunner) -> None:
    trade = {
        "trade_id": "t1",
        "market_id": "text-prime",
        "price": "2.500",
        "quantity": "3",
        "total_value": "7.500",
        "fee": "0.000",
        "side": "buy",
        "execution_timestamp": "2026-01-01T00:00:00.000Z",
    }
    grid.on("GET", "/v1/trades", body={"data": [trade], "paging": {"has_more": False}})
    result = cli.invoke(app, ["trades", "--market", "text-prime", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["price"] == "2.500"
    assert grid.last.url.params["market_id"] == "text-prime"

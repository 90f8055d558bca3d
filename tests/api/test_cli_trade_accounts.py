"""`gridmarket trades`, `balances` and `transfer` as a user runs them: subprocesses against a
real server where a supplier really sold (issued, moved to trading and offered over HTTP) and
the CLI's account really bought, `--json` parsed back and checked against the fills."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import GRIDMARKET, Server, clean_env

from gridmarket.client import Client

MARKET = "text-prime"
TOKENS_PER_UNIT = 1_000_000


def _account(server: Server, where: Path, name: str, *, supplier: bool = False) -> Path:
    return server.key_file(where / f"{name}.json", name, deposit_usd="500", supplier=supplier)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("cli-accounts") / "home")
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture(scope="module")
def key(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI's account, after buying 6 units (4 at 3.000, 2 at 3.100) from a supplier."""
    keys = tmp_path_factory.mktemp("cli-account-keys")
    supplier = _account(server, keys, "supplier", supplier=True)
    buyer = _account(server, keys, "buyer")
    supplier_id = json.loads(supplier.read_text())["account_id"]
    capacity = {"instrument_id": MARKET, "capacity_tokens_per_min": 1_000_000}
    response = server.admin("POST", f"/v1/admin/accounts/{supplier_id}/capacity", json=capacity)
    assert response.status_code == 200, response.text
    with Client(server.url, key_file=supplier) as seller:
        seller.issue_supply(MARKET, 10)
        seller.transfer_from_issuance(MARKET, 10)
        seller.place_order(MARKET, "sell", 4, price="3.000")
        seller.place_order(MARKET, "sell", 6, price="3.100")
    with Client(server.url, key_file=buyer) as client:
        assert client.place_order(MARKET, "buy", 6, price="3.100").status == "filled"
    return buyer


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRIDMARKET), *args], env=clean_env(), capture_output=True, text=True, timeout=60
    )


def run_json(server: Server, key: Path, *args: str) -> Any:
    done = run(*args, "--server", server.url, "--key-file", str(key), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_trades_lists_own_fills(server: Server, key: Path) -> None:
    fills = run_json(server, key, "trades", "--market", MARKET)
    assert sorted((t["price"], t["quantity"], t["side"]) for t in fills) == [
        ("3.000", 4, "buy"),
        ("3.100", 2, "buy"),
    ]
    assert len({t["trade_id"] for t in fills}) == 2
    assert len(run_json(server, key, "trades", "--limit", "1")) == 1
    tape = run_json(server, key, "trades", "--public", "--market", MARKET)
    assert sorted(t["trade_id"] for t in tape) == sorted(t["trade_id"] for t in fills)


def test_transfer_then_balances(server: Server, key: Path) -> None:
    before = run_json(server, key, "balances")
    trading = {row["instrument_id"]: row for row in before["trading_accounts"]}
    assert trading["USD"]["total_balance"] == "481.800"  # 500 - 4 x 3.000 - 2 x 3.100
    assert trading[MARKET]["total_balance"] == "6"
    assert before["consumption_accounts"] == []

    moved = run_json(server, key, "transfer", MARKET, "2")
    assert moved["status"] == "success" and moved["quantity"] == 2
    assert moved["transfer_id"]

    after = run_json(server, key, "balances")
    trading = {row["instrument_id"]: row for row in after["trading_accounts"]}
    assert trading[MARKET]["total_balance"] == "4"
    (consumption,) = after["consumption_accounts"]
    assert consumption["instrument_id"] == MARKET
    assert consumption["available_balance"] == str(2 * TOKENS_PER_UNIT)


def test_the_human_tables(server: Server, key: Path) -> None:
    done = run("balances", "--server", server.url, "--key-file", str(key))
    assert done.returncode == 0, done.stderr
    assert "trading" in done.stdout and "USD" in done.stdout and MARKET in done.stdout
    done = run("trades", "--server", server.url, "--key-file", str(key))
    assert done.returncode == 0, done.stderr
    assert "3.1" in done.stdout and "buy" in done.stdout


def test_a_refused_transfer_is_one_line_and_changes_nothing(server: Server, key: Path) -> None:
    before = run_json(server, key, "balances")
    done = run("transfer", MARKET, "1000", "--server", server.url, "--key-file", str(key))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "HTTP 422" in done.stderr
    assert run_json(server, key, "balances") == before

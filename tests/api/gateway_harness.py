"""Live-server helpers for the consumption gateway tests: a `gridmarket serve` with extra
flags (supplier endpoints), accounts with their consumption keys, and lots made the way a
market makes them (issue, sell, buy, move to consumption) through the admin and Trading APIs.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import STARTUP_TIMEOUT_S, Server, clean_env, free_port
from signed_client import Account

from gridmarket.auth.signing import Signer

TOKENS_PER_UNIT = 1_000_000


class ServerWithArgs(Server):
    """`Server`, started with extra `gridmarket serve` arguments and environment."""

    def __init__(  # the parent's start-up, with `args` and `env` added to the command
        self, data_dir: Path, args: list[str], env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self._log = self.log_path.open("a")
        gridmarket = Path(sys.executable).with_name("gridmarket")
        command = [str(gridmarket), "serve", "--port", str(self.port), "--data-dir", str(data_dir)]
        self.process = subprocess.Popen(
            [*command, *args],
            env=clean_env() | (env or {}),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                pytest.fail(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"server not ready: {self.log_path.read_text()}")


@dataclass
class Party:
    account: Account
    consumption_key: str

    @property
    def account_id(self) -> str:
        return self.account.account_id


def open_party(
    server: Server, *, mode: str = "advanced", deposit: str | None = None, supplier: bool = False
) -> Party:
    body: dict[str, Any] = {"name": "t", "mode": mode, "supplier": supplier}
    if deposit is not None:
        body["deposit_usd"] = deposit
    response = server.admin("POST", "/v1/admin/accounts", json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    signer = Signer(base64.b64decode(data["signing_key"]["private_key"]))
    return Party(Account(server, data["account_id"], signer), data["consumption_key"])


def rebind(party: Party, server: Server) -> Party:
    """The same account, talking to another server process (on the same data dir)."""
    account = Account(server, party.account_id, party.account.signer)
    return Party(account, party.consumption_key)


def offer(server: Server, supplier: Party, instrument: str, units: int, price: str) -> None:
    """The supplier issues `units` and rests a sell order for them at `price`."""
    capacity = {"instrument_id": instrument, "capacity_tokens_per_min": 10_000_000}
    path = f"/v1/admin/accounts/{supplier.account_id}/capacity"
    assert server.admin("POST", path, json=capacity).status_code == 200
    issue = {"instrument_id": instrument, "quantity": units}
    supplier.account.data("POST", "/v1/supply-issuances", issue, status=201)
    supplier.account.data("POST", "/v1/issuance-accounts/transfer", issue)
    order = {
        "market_id": instrument,
        "side": "sell",
        "type": "limit",
        "quantity": str(units),
        "price": price,
        "time_in_force": "gtc",
    }
    supplier.account.data("POST", "/v1/orders", order, status=201)


def buy_to_consumption(buyer: Party, instrument: str, units: int) -> None:
    """A market buy of `units`, then a transfer of them to consumption (one lot per batch)."""
    order = {"market_id": instrument, "side": "buy", "type": "market", "quantity": str(units)}
    placed = buyer.account.data("POST", "/v1/orders", order, status=201)
    assert placed["status"] == "filled", placed
    moved = buyer.account.call(
        "POST",
        "/v1/transfers/trading-to-consumption",
        {"instrument_id": instrument, "quantity": units},
    )
    assert moved.status_code == 200, moved.text


def lots(party: Party, instrument: str) -> list[dict[str, Any]]:
    path = f"/v1/consumption-accounts/{party.account_id}:consumption:{instrument}"
    rows: list[dict[str, Any]] = party.account.data("GET", path)["lots"]
    return rows


def spent(party: Party, instrument: str) -> list[int]:
    """Tokens gone from each lot (billed), in lot order; committed tokens must be back."""
    rows = lots(party, instrument)
    assert all(row["committed_tokens"] == "0" for row in rows), rows
    return [TOKENS_PER_UNIT - int(row["remaining_tokens"]) for row in rows]


def audit_balanced(server: Server) -> bool:
    response = server.admin("GET", "/v1/admin/audit")
    assert response.status_code == 200, response.text
    balanced: bool = response.json()["data"]["balanced"]
    return balanced

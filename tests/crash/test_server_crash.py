"""SIGKILL the real `gridmarket serve` under a load of admin deposits: nothing acknowledged is lost.

The server runs as its own process on SQLite and on PostgreSQL. Many concurrent clients post
deposits of distinct amounts through the admin API and note each acknowledgement (201, with the
command's sequence number). At a random moment the server is killed with SIGKILL. Then the
store must hold every acknowledged deposit at its sequence number with its exact amount, the
ledger must balance (offline audit: sums, negatives, replay against the stored postings), the
account's balance must equal the sum of the stored deposits, and a restarted server must come
up on the same store and report the same balanced ledger.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gridmarket.adapters.store import Store
from gridmarket.core.commands import Deposit
from gridmarket.core.exchange import Exchange
from gridmarket.service.audit import audit_store

GRIDMARKET = Path(sys.executable).with_name("gridmarket")
ROUNDS = int(os.environ.get("GRIDMARKET_CRASH_ROUNDS", "2"))
CLIENTS = 16


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _usd(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class ServerProcess:
    def __init__(self, data_dir: Path, database_url: str, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMARKET_")}
        self._log = log.open("a")  # a file, not a pipe: a full pipe would stall the server
        self.process = subprocess.Popen(
            [str(GRIDMARKET), "serve", "--port", str(self.port), "--data-dir", str(data_dir),
             "--database-url", database_url],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        else:
            self.kill()
            pytest.fail(f"server not ready: {log.read_text()}")
        self.token = (data_dir / "operator-token").read_text().strip()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self._log.close()


async def _deposit_until_killed(
    server: ServerProcess, account_id: str, first_micros: int, kill_after_s: float
) -> dict[int, int]:
    """Post deposits from many clients; kill the server mid-load. Acknowledged: seq -> micros."""
    acknowledged: dict[int, int] = {}
    next_amount = first_micros
    headers = {"Authorization": f"Bearer {server.token}"}
    path = f"/v1/admin/accounts/{account_id}/deposits"

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_amount
        while True:
            amount = next_amount
            next_amount += 1
            try:
                response = await http.post(path, json={"amount_usd": _usd(amount)})
            except httpx.TransportError:
                return  # the server is gone; this deposit's outcome is unknown
            assert response.status_code == 201, response.text
            acknowledged[response.json()["data"]["seq"]] = amount

    # One client (building one costs ~0.1 s here), CLIENTS connections used at once.
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, timeout=10, limits=limits
    ) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(CLIENTS)]
        await asyncio.sleep(kill_after_s)
        server.kill()
        await asyncio.gather(*tasks)
    return acknowledged


def test_sigkill_of_the_server_loses_no_acknowledged_deposit(
    database_url: str, tmp_path: Path
) -> None:
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    data_dir = tmp_path / "home"
    log = tmp_path / "server.log"
    server = ServerProcess(data_dir, database_url, log)
    created = httpx.post(
        f"{server.url}/v1/admin/accounts",
        headers={"Authorization": f"Bearer {server.token}"},
        json={"name": "alice", "mode": "advanced"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    account_id = created.json()["data"]["account_id"]
    all_acknowledged: dict[int, int] = {}
    first_micros = 1
    for round_number in range(ROUNDS):
        if round_number:
            server = ServerProcess(data_dir, database_url, log)
        kill_after_s = rng.uniform(0.5, 1.5)
        acknowledged = asyncio.run(
            _deposit_until_killed(server, account_id, first_micros, kill_after_s)
        )
        assert acknowledged, f"no deposit was acknowledged before the kill (seed {seed})"
        all_acknowledged.update(acknowledged)
        first_micros += 1_000_000  # amounts of later rounds never repeat earlier ones

        store = Store(database_url)
        try:
            stored = {seq: command for seq, _ts, command in store.load_commands()}
            exchange = Exchange()
            for seq, ts_ms, command in store.load_commands():
                exchange.apply(command, seq, ts_ms)
        finally:
            store.close()
        for seq, micros in all_acknowledged.items():
            command = stored.get(seq)
            assert isinstance(command, Deposit), f"acknowledged seq {seq} lost (seed {seed})"
            assert command.amount_usd_micros == micros
        deposited = sum(c.amount_usd_micros for c in stored.values() if isinstance(c, Deposit))
        assert exchange.balance(f"{account_id}/usd/available") == deposited
        report = audit_store(database_url)
        assert report.balanced, report

    restarted = ServerProcess(data_dir, database_url, log)
    try:
        audit = httpx.get(
            f"{restarted.url}/v1/admin/audit",
            headers={"Authorization": f"Bearer {restarted.token}"},
            timeout=10,
        )
        assert audit.status_code == 200, audit.text
        assert audit.json()["data"]["balanced"] is True
        assert audit.json()["data"]["last_seq"] >= max(all_acknowledged)
    finally:
        restarted.kill()

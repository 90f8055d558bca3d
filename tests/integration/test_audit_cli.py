"""`gridmarket audit` replays a real store, prints the sums, and fails on a tampered journal."""

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from gridmarket.core.commands import CreateAccount, Deposit, Withdraw
from gridmarket.core.ids import AccountId
from gridmarket.service.market import MarketService


def _run_audit(
    data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridmarket", "audit", "--json", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=None if env is None else os.environ | env,
    )


async def _fill(url: str) -> None:
    async with MarketService.from_url(url) as market:
        await market.submit(CreateAccount(AccountId("alice")))
        await market.submit(Deposit(AccountId("alice"), 5_000_000))
        await market.submit(Withdraw(AccountId("alice"), 1_250_000))


def test_audit_of_a_written_store_balances_and_a_tampered_one_fails(tmp_path: Path) -> None:
    db = tmp_path / "gridmarket.db"
    asyncio.run(_fill(f"sqlite:///{db}"))

    # The gateway's endpoints are the server's business: a malformed list does not stop this.
    ok = _run_audit(tmp_path, {"GRIDMARKET_SUPPLIERS": "not an endpoint"})
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["balanced"] is True
    assert report["last_seq"] == 3
    assert report["sums_by_asset"] == {"usd": 0}

    with sqlite3.connect(db) as connection:  # a posting silently rewritten
        connection.execute("UPDATE postings SET amount = amount + 1 WHERE amount = 1250000")
    bad = _run_audit(tmp_path)
    assert bad.returncode == 1
    mismatches = json.loads(bad.stdout)["journal_mismatches"]
    assert mismatches["alice/usd/available"] == [3_750_000, 3_749_999]

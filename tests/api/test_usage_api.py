"""Usage receipts over real HTTP: GET /v1/usage (filters, paging both ways), one receipt, daily
totals, per key, calls in flight, isolation between accounts, the same after a restart,
/metrics in the Prometheus format with the right values (and the operator token when asked),
and `gridmarket usage --json` as a subprocess.

The gateway is not on this branch, so the calls are seeded in process before the server
starts: a supplier sells units, two consumers buy them and move them to consumption, then
CommitTokens + SettleCall as the gateway will submit them. Every expected number below is
worked out by hand from the lot prices (ceil(tokens × price ÷ 1,000,000) micro-USD per lot).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import GRIDMARKET, Server, clean_env
from prometheus_client.parser import text_string_to_metric_families
from test_orders_api import MARKET, Trader
from test_replace_and_trades_api import _trader_from

from gridmarket.client import AsyncClient, Client, DailyUsage, NotFound
from gridmarket.core.commands import (
    Command,
    CommitTokens,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    SettleCall,
    TransferIssuanceToTrading,
    TransferToConsumption,
)
from gridmarket.core.events import OrderRejected, Rejected
from gridmarket.core.ids import AccountId, CallId, InstrumentId
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings

TP = InstrumentId(MARKET)


def _calls(alice: AccountId, bob: AccountId) -> list[Command]:
    """Alice holds lot A (2 units from s at 2.000) and lot B (1 unit at 2.500); Bob one unit at
    2.500. Receipts r1-r5 are Alice's, rb1 Bob's. (No call is left in flight: a server settles
    any it finds at start as failed, see `service.runtime.settle_orphaned_calls`; calls in flight
    are covered by tests/unit/test_usage_model.py.)"""

    def settle(call: str, used: int, **receipt: Any) -> SettleCall:
        return SettleCall(CallId(call), used, request_id=call, **receipt)

    return [
        CommitTokens(CallId("r1"), alice, TP, 1_500_000, "ka"),
        settle(
            "r1",
            1_200_000,
            supplier_id="s",
            model="smollm2",
            prompt_tokens=200_000,
            completion_tokens=1_000_000,
            ttft_ms=400,
            duration_ms=2_400,
        ),
        CommitTokens(CallId("r2"), alice, TP, 1_000_000, "ka"),
        settle("r2", 900_000, supplier_id="s", prompt_tokens=100_000, completion_tokens=800_000),
        CommitTokens(CallId("r3"), alice, TP, 1_000, "kb"),
        settle("r3", 0, supplier_id="s", status="failed"),
        CommitTokens(CallId("r4"), alice, TP, 100, "kb"),
        settle("r4", 100, supplier_id="s", prompt_tokens=60, completion_tokens=40),
        CommitTokens(CallId("r5"), alice, TP, 10),
        settle(
            "r5",
            3,
            supplier_id="s",
            prompt_tokens=2,
            completion_tokens=1,
            ttft_ms=50,
            duration_ms=100,
            status="cancelled",
            usage_estimated=True,
        ),
        CommitTokens(CallId("rb1"), bob, TP, 100, "kbob"),
        settle("rb1", 50, supplier_id="s", prompt_tokens=20, completion_tokens=30),
    ]


def _seed(data_dir: Path, supplier: str, alice: str, bob: str) -> None:
    async def seed() -> None:
        url = Settings.resolve(data_dir=data_dir, environ={}).database_url
        s, a, b = AccountId(supplier), AccountId(alice), AccountId(bob)
        async with MarketService.from_url(url, tune_gc=False) as market:
            for command in [
                SetSupplierCapacity(s, TP, 10**9),
                IssueUnits(s, TP, 4),
                TransferIssuanceToTrading(s, TP, 4),
                PlaceOrder(s, TP, "sell", "limit", 2, 2_000_000),
                PlaceOrder(s, TP, "sell", "limit", 2, 2_500_000),
                PlaceOrder(a, TP, "buy", "market", 3, None),
                PlaceOrder(b, TP, "buy", "market", 1, None),
                TransferToConsumption(a, TP, 3),
                TransferToConsumption(b, TP, 1),
                *_calls(a, b),
            ]:
                outcome = await market.submit(command)
                bad = [e for e in outcome.events if isinstance(e, Rejected | OrderRejected)]
                assert not bad, (command, bad)

    asyncio.run(seed())


class World:
    def __init__(self, home: Path, keys_dir: Path) -> None:
        self.home = home
        self.server = Server(home)
        made = {}
        for name, supplier in (("s", True), ("alice", False), ("bob", False)):
            body = {"name": name, "supplier": supplier, "mode": "advanced", "deposit_usd": "100"}
            response = self.server.admin("POST", "/v1/admin/accounts", json=body)
            assert response.status_code == 201, response.text
            made[name] = response.json()["data"]
            (keys_dir / f"{name}.json").write_text(json.dumps(made[name]))
        self.key_files = {name: keys_dir / f"{name}.json" for name in made}
        self.seller, self.alice, self.bob = (
            _trader_from(self.server, made[n]) for n in ("s", "alice", "bob")
        )
        self.server.stop()
        _seed(home, self.seller.account_id, self.alice.account_id, self.bob.account_id)
        self.restart(already_stopped=True)

    def restart(self, *, already_stopped: bool = False) -> None:
        if not already_stopped:
            self.server.stop()
        self.server = Server(self.home)
        for trader in (self.seller, self.alice, self.bob):
            trader.server = self.server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = World(tmp_path_factory.mktemp("usage") / "home", tmp_path_factory.mktemp("usage-keys"))
    try:
        yield made
    finally:
        made.server.kill()


def _get(trader: Trader, path: str, query: str = "", status: int = 200) -> Any:
    response = trader.call("GET", path, query=query)
    assert response.status_code == status, (path, query, response.text)
    return response.json()


def _ids(body: Any) -> list[str]:
    return [r["request_id"] for r in body["data"]]


def test_a_receipt_has_its_tokens_lots_trades_and_value(world: World) -> None:
    r1 = _get(world.alice, "/v1/usage/r1")["data"]
    assert {k: r1[k] for k in ("request_id", "call_id", "key_id", "instrument_id")} == {
        "request_id": "r1",
        "call_id": "r1",
        "key_id": "ka",
        "instrument_id": MARKET,
    }
    assert (r1["supplier_id"], r1["model"], r1["status"], r1["usage_estimated"]) == (
        "s",
        "smollm2",
        "ok",
        False,
    )
    assert (r1["prompt_tokens"], r1["completion_tokens"], r1["total_tokens"]) == (
        200_000,
        1_000_000,
        1_200_000,
    )
    assert (r1["committed_tokens"], r1["used_tokens"], r1["billed_tokens"]) == (
        1_500_000,
        1_200_000,
        1_200_000,
    )
    assert (r1["released_tokens"], r1["unbilled_tokens"]) == (300_000, 0)
    # 1,000,000 completion tokens in 2,000 ms after the first
    assert (r1["ttft_ms"], r1["duration_ms"], r1["tokens_per_second"]) == (400, 2_400, 500_000)
    # 1,200,000 tokens of lot A at 2.000 a million
    assert (r1["billed_value_usd"], r1["billed_value_usd_micros"]) == ("2.400", 2_400_000)
    (lot,) = r1["lots"]
    assert (lot["tokens"], lot["supplier_id"], lot["price"], lot["value_usd"]) == (
        1_200_000,
        world.seller.account_id,
        "2.000",
        "2.400",
    )
    fills = _get(world.alice, "/v1/trades", "?order_direction=asc")["data"]
    assert lot["trade_ids"] == [fills[0]["trade_id"]] and fills[0]["price"] == "2.000"
    assert r1["started_at"] <= r1["settled_at"] == r1["created_at"]

    r2 = _get(world.alice, "/v1/usage/r2")["data"]
    # 800,000 left in lot A (1.600) and 100,000 of lot B at 2.500 (0.250)
    assert [(x["tokens"], x["value_usd_micros"]) for x in r2["lots"]] == [
        (800_000, 1_600_000),
        (100_000, 250_000),
    ]
    assert r2["lots"][1]["trade_ids"] == [fills[1]["trade_id"]]
    assert r2["billed_value_usd"] == "1.850"
    r5 = _get(world.alice, "/v1/usage/r5")["data"]
    # 3 tokens at 2.500 a million: 7.5 micro-USD, rounded up
    assert (r5["billed_value_usd_micros"], r5["status"], r5["usage_estimated"]) == (
        8,
        "cancelled",
        True,
    )
    r3 = _get(world.alice, "/v1/usage/r3")["data"]
    assert (r3["billed_tokens"], r3["lots"], r3["billed_value_usd"]) == (0, [], "0.000")


def test_lists_filter_and_page_newest_first(world: World) -> None:
    alice = world.alice
    assert _ids(_get(alice, "/v1/usage")) == ["r5", "r4", "r3", "r2", "r1"]
    assert _ids(_get(alice, "/v1/usage", "?order_direction=asc")) == ["r1", "r2", "r3", "r4", "r5"]
    assert _ids(_get(alice, "/v1/usage", "?key_id=ka")) == ["r2", "r1"]
    assert _ids(_get(alice, "/v1/usage", "?status=failed,cancelled")) == ["r5", "r3"]
    assert _ids(_get(alice, "/v1/usage", "?model=TEXT-PRIME&key_id=kb")) == ["r4", "r3"]
    assert _ids(_get(alice, "/v1/usage", "?instrument_id=text-standard")) == []
    assert _ids(_get(alice, "/v1/usage", "?start_datetime=2999-01-01T00:00:00Z")) == []
    assert _ids(_get(alice, "/v1/usage", "?end_datetime=2000-01-01")) == []

    first = _get(alice, "/v1/usage", "?limit=2")
    assert _ids(first) == ["r5", "r4"] and first["paging"]["has_more"] is True
    assert first["paging"]["prev_cursor"] is None
    second = _get(alice, "/v1/usage", f"?limit=2&next={first['paging']['next_cursor']}")
    assert _ids(second) == ["r3", "r2"]
    third = _get(alice, "/v1/usage", f"?limit=2&next={second['paging']['next_cursor']}")
    assert _ids(third) == ["r1"] and third["paging"]["has_more"] is False
    back = _get(alice, "/v1/usage", f"?limit=2&prev={second['paging']['prev_cursor']}")
    assert _ids(back) == ["r5", "r4"]

    assert _ids(_get(alice, "/v1/api-keys/ka/usage")) == ["r2", "r1"]
    assert _ids(_get(alice, "/v1/api-keys/kb/usage", "?limit=1")) == ["r4"]
    assert _get(alice, "/v1/usage/in-flight")["data"] == []


@pytest.mark.parametrize(
    "query",
    [
        "?limit=0",
        "?limit=101",
        "?status=done",
        "?next=!!",
        "?start_datetime=soon",
        "?key_id=" + "k" * 300,
    ],
)
def test_bad_queries_are_422(world: World, query: str) -> None:
    errors = _get(world.alice, "/v1/usage", query, status=422)["errors"]
    assert errors["code"] == "validation_error"


def test_daily_totals(world: World) -> None:
    rows = _get(world.alice, "/v1/usage/daily")["data"]
    by_key = {r["key_id"]: r for r in rows}
    assert len(rows) == 3 and {r["instrument_id"] for r in rows} == {MARKET}
    assert len({r["date"] for r in rows}) == 1
    fields = ("calls", "failed_calls", "cancelled_calls", "billed_tokens", "billed_value_usd")
    fields += ("prompt_tokens", "completion_tokens")
    got = {k: tuple(r[f] for f in fields) for k, r in by_key.items()}
    assert got == {
        "ka": (2, 0, 0, 2_100_000, "4.250", 300_000, 1_800_000),
        "kb": (2, 1, 0, 100, "0.00025", 60, 40),
        None: (1, 0, 1, 3, "0.000008", 2, 1),
    }
    day = rows[0]["date"]
    assert len(_get(world.alice, "/v1/usage/daily", f"?from_date={day}&to_date={day}")["data"]) == 3
    assert _get(world.alice, "/v1/usage/daily", "?from_date=2999-01-01")["data"] == []
    assert _get(world.alice, "/v1/usage/daily", "?to_date=2000-01-01")["data"] == []
    only = _get(world.alice, "/v1/usage/daily", "?key_id=kb&limit=1")
    assert [r["key_id"] for r in only["data"]] == ["kb"] and only["paging"]["has_more"] is False
    assert _get(world.alice, "/v1/usage/daily", "?limit=2")["paging"]["has_more"] is True
    _get(world.alice, "/v1/usage/daily", "?limit=5000", status=422)
    _get(world.alice, "/v1/usage/daily", "?from_date=yesterday", status=422)


def test_accounts_see_only_their_own_usage(world: World) -> None:
    bob = world.bob
    assert _ids(_get(bob, "/v1/usage")) == ["rb1"]
    rb1 = _get(bob, "/v1/usage/rb1")["data"]
    assert (rb1["billed_tokens"], rb1["billed_value_usd_micros"]) == (50, 125)
    assert _get(bob, "/v1/usage/r1", status=404)["errors"]["code"] == "usage_not_found"
    assert _get(world.alice, "/v1/usage/rb1", status=404)["errors"]["code"] == "usage_not_found"
    assert _get(bob, "/v1/api-keys/ka/usage", status=404)["errors"]["code"] == "api_key_not_found"
    assert _ids(_get(bob, "/v1/usage", "?key_id=ka")) == []
    assert _get(bob, "/v1/usage/in-flight")["data"] == []
    assert [r["key_id"] for r in _get(bob, "/v1/usage/daily")["data"]] == ["kbob"]
    assert _get(world.seller, "/v1/usage")["data"] == []
    unsigned = httpx.get(f"{world.server.url}/v1/usage", timeout=10)
    assert unsigned.status_code == 401


def _metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_are_prometheus_text_with_the_committed_values(world: World) -> None:
    response = httpx.get(f"{world.server.url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    m = _metrics(response.text)
    ka = (("instrument", MARKET), ("key", "ka"))
    assert m[("gridmarket_calls_total", ka)] == 2
    assert m[("gridmarket_tokens_total", (*ka, ("kind", "billed")))] == 2_100_000
    assert m[("gridmarket_tokens_total", (*ka, ("kind", "prompt")))] == 300_000
    assert m[("gridmarket_spend_usd_micros_total", ka)] == 4_250_000
    assert m[("gridmarket_calls_total", (("instrument", MARKET), ("key", "")))] == 1
    by_status = {
        status: m[
            ("gridmarket_calls_by_status_total", (("instrument", MARKET), ("status", status)))
        ]
        for status in ("ok", "failed", "cancelled")
    }
    assert by_status == {"ok": 4, "failed": 1, "cancelled": 1}
    assert m.get(("gridmarket_calls_in_flight", (("instrument", MARKET),)), 0) == 0
    s = (("supplier", "s"),)
    assert m[("gridmarket_call_ttft_seconds_count", s)] == 2
    assert m[("gridmarket_call_ttft_seconds_sum", s)] == pytest.approx(0.45)
    assert m[("gridmarket_call_ttft_seconds_bucket", (("le", "0.05"), *s))] == 1
    assert m[("gridmarket_call_ttft_seconds_bucket", (("le", "0.5"), *s))] == 2
    assert m[("gridmarket_call_duration_seconds_count", s)] == 2
    assert m[("gridmarket_committed_seq", ())] > 0
    assert m[("gridmarket_open_orders", ())] == 0
    # The gateway's hooks are registered (no sample until the gateway reports one).
    assert "gridmarket_gateway_overhead_seconds" in response.text


def test_restart_keeps_everything_and_metrics_can_require_the_token(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = [_get(t, "/v1/usage") for t in (world.alice, world.bob)]
    daily = _get(world.alice, "/v1/usage/daily")
    metrics = _metrics(httpx.get(f"{world.server.url}/metrics", timeout=10).text)
    monkeypatch.setenv("GRIDMARKET_METRICS_AUTH", "token")
    world.restart()
    assert [_get(t, "/v1/usage") for t in (world.alice, world.bob)] == before
    assert _get(world.alice, "/v1/usage/daily") == daily
    refused = httpx.get(f"{world.server.url}/metrics", timeout=10)
    assert refused.status_code == 401 and refused.json()["errors"]["code"] == "unauthorized"
    wrong = httpx.get(
        f"{world.server.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401
    allowed = httpx.get(
        f"{world.server.url}/metrics",
        headers={"Authorization": f"Bearer {world.server.token}"},
        timeout=10,
    )
    assert allowed.status_code == 200
    after = _metrics(allowed.text)
    for key, value in metrics.items():
        if key[0].startswith(("gridmarket_calls", "gridmarket_tokens", "gridmarket_spend")):
            assert after[key] == value, key
    monkeypatch.delenv("GRIDMARKET_METRICS_AUTH")
    world.restart()


def _cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in clean_env().items() if k != "GRIDMARKET_METRICS_AUTH"}
    return subprocess.run(
        [str(GRIDMARKET), "usage", *args, "--server", world.server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_usage_json_and_tables(world: World) -> None:
    alice = str(world.key_files["alice"])
    done = _cli(world, "--key-file", alice, "--json", "--key", "ka")
    assert done.returncode == 0, done.stderr
    receipts = json.loads(done.stdout)
    assert [r["request_id"] for r in receipts] == ["r2", "r1"]
    assert (
        receipts[1]["billed_value_usd"] == "2.400" and receipts[1]["lots"][0]["tokens"] == 1_200_000
    )
    done = _cli(world, "--key-file", alice, "--json", "--limit", "3")
    assert [r["request_id"] for r in json.loads(done.stdout)] == ["r5", "r4", "r3"]
    done = _cli(world, "--key-file", alice, "--json", "--daily", "--instrument", MARKET)
    assert sorted(str(r["key_id"]) for r in json.loads(done.stdout)) == ["None", "ka", "kb"]
    table = _cli(world, "--key-file", str(world.key_files["bob"]))
    assert table.returncode == 0 and "rb1" in table.stdout and "kbob" in table.stdout
    bad = _cli(world, "--key-file", alice, "--status", "done")
    assert bad.returncode == 1 and bad.stderr.startswith("error:")
    assert os.environ.get("GRIDMARKET_METRICS_AUTH") is None


def test_the_operator_reads_any_accounts_usage(world: World) -> None:
    server = world.server
    alice = world.alice.account_id
    listed = server.admin("GET", f"/v1/admin/accounts/{alice}/usage", params={"key_id": "kb"})
    assert listed.status_code == 200, listed.text
    assert _ids(listed.json()) == ["r4", "r3"]
    assert listed.json()["data"] == _get(world.alice, "/v1/usage", "?key_id=kb")["data"]
    daily = server.admin("GET", f"/v1/admin/accounts/{alice}/usage/daily")
    assert daily.json() == _get(world.alice, "/v1/usage/daily")
    unknown = server.admin("GET", "/v1/admin/accounts/nobody/usage")
    assert unknown.status_code == 404 and unknown.json()["errors"]["code"] == "account_not_found"
    bad = server.admin("GET", f"/v1/admin/accounts/{alice}/usage", params={"limit": "0"})
    assert bad.status_code == 422
    anonymous = httpx.get(f"{server.url}/v1/admin/accounts/{alice}/usage", timeout=10)
    assert anonymous.status_code == 401


def test_the_python_clients_read_usage(world: World) -> None:
    """Both clients parse receipts, pages, one receipt, per-key lists and daily totals."""
    key_file = world.key_files["alice"]
    with Client(world.server.url, key_file=key_file) as client:
        page = client.usage(limit=2)
        assert [r.request_id for r in page.items] == ["r5", "r4"] and page.has_more
        assert [r.request_id for r in client.iter_usage(status="ok")] == ["r4", "r2", "r1"]
        r1 = client.usage_receipt("r1")
        assert (r1.billed_value_usd, r1.lots[0].price, r1.lots[0].tokens) == (
            Decimal("2.4"),
            Decimal("2"),
            1_200_000,
        )
        with pytest.raises(NotFound):
            client.usage_receipt("rb1")
        with pytest.raises(ValueError, match="status"):
            client.usage(status="done")

    async def read() -> tuple[list[str], list[DailyUsage]]:
        async with AsyncClient(world.server.url, key_file=key_file) as client:
            page = await client.key_usage("ka")
            return [r.request_id for r in page.items], await client.usage_daily(key_id="ka")

    ids, daily = asyncio.run(read())
    assert ids == ["r2", "r1"]
    assert [(d.key_id, d.calls, d.billed_tokens, d.billed_value_usd) for d in daily] == [
        ("ka", 2, 2_100_000, Decimal("4.25"))
    ]

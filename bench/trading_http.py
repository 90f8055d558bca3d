"""The signed Trading API over real HTTP: orders/s and latency against a real `gridmarket serve`.

    .venv/bin/python bench/trading_http.py [--orders 2000] [--clients 8] [--server-env K=V ...]

A fresh data dir (SQLite, synchronous=FULL, in a temporary directory) and a real server in a
subprocess (`python -m gridmarket serve`, its log in the temporary directory). Clients are
`httpx.AsyncClient`s with one keep-alive connection each, all in this process, signing every
request the way The Grid's client does (`gridmarket.auth.signing`: Ed25519 over timestamp +
method + path + body, a fresh timestamp per request).

Accounts, all over HTTP as an operator and a supplier would open them. Half the clients are
buyers, opened through the admin API with a USD deposit. The other half are sellers: opened
as suppliers (admin API), given a capacity (`POST /v1/admin/accounts/{id}/capacity`), then,
signed by their own keys, they issue units (`POST /v1/supply-issuances`) and move them to
trading (`POST /v1/issuance-accounts/transfer`), so they have units to sell.

Phases, each with the same clients, connections and request count (`--orders`, split evenly):
1. `health`: unsigned GET /v1/health, the baseline: HTTP, routing and JSON, no signature, no
   sequencer. Run again last (`health_after`); the ratio uses the mean of the two, which
   evens out drift from whatever else the machine is doing.
2. `me`: signed GET /v1/me: the baseline plus signature verification and the key lookup.
3. `orders`: signed POST /v1/orders, limit orders of 1 unit at one price, sellers selling and
   buyers buying: each order either trades with a resting one or rests, so about half of them
   trade and the book stays small. Every order carries a unique client_order_id (two equal
   bodies signed in the same second would otherwise be the same signature: a replay).

Printed: requests/s, p50 and p99 latency per phase, the ratio orders/s ÷ health/s, the refusals
by status (429s are counted: if rate limits are on, raise them with `--server-env`; by default
the bench sets the rate-limit settings the rate-limit work names to 1,000,000, which a server
without rate limits ignores), and the trades made (from GET /v1/markets/{id}/stats). The last
line is one JSON object with every figure. The clients share the machine's cores with the
server: on a small VM the figures are a floor, not the server's ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from gridmarket.auth.signing import Signer

MARKET = "text-prime"
#: Tokens/min; issuance may reach this x the 240-minute horizon (the admin API's maximum).
SELLER_CAPACITY = 10**12
PRICE = "1.000"
STARTUP_TIMEOUT_S = 30
#: Rate-limit settings (GRIDMARKET_* environment) raised so the bench measures the API, not
#: the limiter; a server that does not know them ignores them. `--server-env` overrides.
RATE_LIMITS_OFF = {
    "GRIDMARKET_RATE_LIMIT_REQUESTS": "1000000",
    "GRIDMARKET_ORDER_RATE_PER_SECOND": "1000000",
    "GRIDMARKET_ORDER_RATE_PER_MINUTE": "1000000",
    "GRIDMARKET_ORDER_BURST": "1000000",
}


class Client(NamedTuple):
    name: str
    side: str
    signer: Signer


class Phase(NamedTuple):
    name: str
    seconds: float
    latencies_s: list[float]
    statuses: dict[int, int]

    @property
    def per_second(self) -> float:
        return len(self.latencies_s) / self.seconds

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        return {
            "requests": len(ordered),
            "per_second": round(self.per_second, 1),
            "p50_ms": round(statistics.median(ordered) * 1_000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)] * 1_000, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


# -- setup --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(data_dir: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    dropped = ("GRIDMARKET_HOME", "GRIDMARKET_DATABASE_URL", "GRIDMARKET_SERVER")
    env = {k: v for k, v in os.environ.items() if k not in dropped} | RATE_LIMITS_OFF | extra_env
    log = (data_dir.parent / "server.log").open("ab")
    command = [sys.executable, "-m", "gridmarket", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data_dir)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited:\n{(data_dir.parent / 'server.log').read_text()}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    sys.exit(f"server not ready after {STARTUP_TIMEOUT_S}s")


def _admin(url: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.post(f"{url}{path}", headers=headers, json=body, timeout=10)
    if response.status_code not in (200, 201):
        sys.exit(f"POST {path} failed: {response.status_code} {response.text}")
    data: dict[str, Any] = response.json()["data"]
    return data


def _signed_post(url: str, signer: Signer, path: str, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    headers = signer.sign_request("POST", path, raw, int(time.time()))
    headers["Content-Type"] = "application/json"
    response = httpx.post(f"{url}{path}", content=raw, headers=headers, timeout=10)
    if response.status_code not in (200, 201):
        sys.exit(f"POST {path} failed: {response.status_code} {response.text}")


def open_buyers(url: str, token: str, count: int, deposit_usd: int) -> list[str]:
    keys = []
    for i in range(count):
        body = {"name": f"buyer-{i}", "mode": "advanced", "deposit_usd": str(deposit_usd)}
        keys.append(_admin(url, token, "/v1/admin/accounts", body)["signing_key"]["private_key"])
    return keys


def open_sellers(url: str, token: str, count: int, units_each: int) -> list[str]:
    """Suppliers with `units_each` units in trading, set up over HTTP; their private keys."""
    keys = []
    for i in range(count):
        body = {"name": f"seller-{i}", "mode": "advanced", "supplier": True}
        opened = _admin(url, token, "/v1/admin/accounts", body)
        capacity = {"instrument_id": MARKET, "capacity_tokens_per_min": SELLER_CAPACITY}
        _admin(url, token, f"/v1/admin/accounts/{opened['account_id']}/capacity", capacity)
        key = opened["signing_key"]["private_key"]
        signer = Signer(base64.b64decode(key))
        units = {"instrument_id": MARKET, "quantity": units_each}
        _signed_post(url, signer, "/v1/supply-issuances", units)
        _signed_post(url, signer, "/v1/issuance-accounts/transfer", units)
        keys.append(key)
    return keys


# -- load ---------------------------------------------------------------------------------------


def _order_body(client: Client, k: int) -> bytes:
    body = {
        "market_id": MARKET,
        "side": client.side,
        "type": "limit",
        "quantity": "1",
        "price": PRICE,
        "time_in_force": "gtc",
        "client_order_id": f"{client.name}-{k}",
    }
    return json.dumps(body).encode()


async def _one(http: httpx.AsyncClient, phase: str, client: Client, k: int) -> int:
    if phase.startswith("health"):
        response = await http.get("/v1/health")
    elif phase == "me":
        headers = client.signer.sign_request("GET", "/v1/me", b"", int(time.time()))
        response = await http.get("/v1/me", headers=headers)
    else:
        raw = _order_body(client, k)
        headers = client.signer.sign_request("POST", "/v1/orders", raw, int(time.time()))
        headers["Content-Type"] = "application/json"
        response = await http.post("/v1/orders", content=raw, headers=headers)
    return response.status_code


async def run_phase(
    name: str, clients: list[Client], https: list[httpx.AsyncClient], counts: list[int]
) -> Phase:
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def drive(client: Client, http: httpx.AsyncClient, count: int) -> None:
        for k in range(count):
            started = time.perf_counter()
            status = await _one(http, name, client, k)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(drive(c, h, n) for c, h, n in zip(clients, https, counts, strict=True)))
    return Phase(name, time.perf_counter() - started, latencies, statuses)


async def run(url: str, clients: list[Client], orders: int) -> list[Phase]:
    share, extra = divmod(orders, len(clients))
    counts = [share + (1 if i < extra else 0) for i in range(len(clients))]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = [httpx.AsyncClient(base_url=url, limits=limits, timeout=30) for _ in clients]
    try:
        await run_phase("health", clients, https, [20] * len(clients))  # warm-up
        names = ("health", "me", "orders", "health_after")
        return [await run_phase(name, clients, https, counts) for name in names]
    finally:
        for http in https:
            await http.aclose()


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2_000, help="requests per phase")
    parser.add_argument("--clients", type=int, default=8, help="concurrent signed clients")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="server env"
    )
    args = parser.parse_args()
    if args.orders < 1 or args.clients < 2:
        parser.error("--orders must be at least 1 and --clients at least 2")
    extra_env = dict(item.split("=", 1) for item in args.server_env)
    sellers_n = args.clients // 2
    buyers_n = args.clients - sellers_n
    per_client = -(-args.orders // args.clients)

    with tempfile.TemporaryDirectory(prefix="gm-bench-http-") as tmp:
        data_dir = Path(tmp) / "home"
        data_dir.mkdir()
        process, url = start_server(data_dir, extra_env)
        try:
            token = (data_dir / "operator-token").read_text().strip()
            seller_keys = open_sellers(url, token, sellers_n, per_client)
            buyer_keys = open_buyers(url, token, buyers_n, deposit_usd=2 * per_client + 100)
            clients = [
                Client(f"s{i}", "sell", Signer(base64.b64decode(k)))
                for i, k in enumerate(seller_keys)
            ] + [
                Client(f"b{i}", "buy", Signer(base64.b64decode(k)))
                for i, k in enumerate(buyer_keys)
            ]
            phases = asyncio.run(run(url, clients, args.orders))
            stats = httpx.get(f"{url}/v1/markets/{MARKET}/stats", timeout=10).json()["data"]
        finally:
            process.terminate()
            process.wait(timeout=30)

    report: dict[str, Any] = {"requests_per_phase": args.orders, "clients": args.clients}
    for phase in phases:
        summary = phase.summary()
        report[phase.name] = summary
        print(
            f"{phase.name:>12}: {summary['per_second']:>8.1f} req/s  p50 {summary['p50_ms']:.2f} ms"
            f"  p99 {summary['p99_ms']:.2f} ms  statuses {summary['statuses']}"
        )
    health, me, placed, health_after = phases
    baseline = (health.per_second + health_after.per_second) / 2
    report["health_mean_per_second"] = round(baseline, 1)
    report["orders_over_health"] = round(placed.per_second / baseline, 3)
    report["orders_over_signed_read"] = round(placed.per_second / me.per_second, 3)
    report["trades"] = stats["num_trades"]
    print(
        f"orders/s ÷ mean health req/s = {report['orders_over_health']:.3f};"
        f" ÷ signed GET /v1/me req/s = {report['orders_over_signed_read']:.3f};"
        f" trades made: {report['trades']}"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()

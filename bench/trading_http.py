"""The signed Trading API over real HTTP: orders/s and latency against a real `gridmarket serve`.

    .venv/bin/python bench/trading_http.py [--orders 6000] [--clients 8] [--connections 16]
        [--load-processes 1] [--plain-server] [--serve-arg=--access-log] [--uvicorn KEY=JSON]
        [--server-env K=V ...] [--server-python-args ARGS]

A fresh data dir (SQLite, synchronous=FULL, in a temporary directory) and a real server in a
subprocess (`python -m gridmarket serve`, its log in the temporary directory; `--plain-server`
forces uvicorn's pure-Python asyncio loop and h11 parser, `--uvicorn KEY=JSON` any other
uvicorn.run argument, e.g. `access_log=false`, for comparison). The load runs in
separate processes (`--load-processes`, `bench/http_load.py`), over `--connections` keep-alive
connections in all, each sending its next request when the previous answer has arrived, with
lean HTTP/1.1 over asyncio streams: requests are pre-encoded bytes, signed just before the
phase starts the way The Grid's client signs (`gridmarket.auth.signing`: Ed25519 over timestamp
+ method + path + body, the timestamp of signing; a request whose signature is 20 s old when
its turn comes is signed again). Latency is per request, write to last byte of the answer.

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

Printed: requests/s, p50 and p99 latency per phase, the CPU the server process used (from
/proc/PID/stat: % of one core, and microseconds per request), the load processes used and the
whole machine (/proc/stat: % of all cores busy, other tenants included), the
ratio orders/s ÷ health/s, the refusals by status (429s are counted; by default the bench sets
the rate limits to 1,000,000), and the trades made (from GET /v1/markets/{id}/stats). The
last line is one JSON object with every figure. The load processes share the machine's cores
with the server: on a small VM the figures are a floor, not the server's ceiling; the server's
CPU per request says how far one process could go on a core of its own.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, NamedTuple

import httpx

import http_load  # bench/http_load.py, next to this script
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


class Phase(NamedTuple):
    name: str
    seconds: float
    latencies_s: list[float]
    statuses: dict[int, int]
    server_cpu_s: float
    load_cpu_s: float
    prepare_cpu_s: float
    resigned: int
    machine_busy_pct: float

    @property
    def per_second(self) -> float:
        return len(self.latencies_s) / self.seconds

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        n = len(ordered)
        return {
            "requests": n,
            "per_second": round(self.per_second, 1),
            "p50_ms": round(statistics.median(ordered) * 1_000, 2),
            "p99_ms": round(ordered[min(n - 1, n * 99 // 100)] * 1_000, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_cpu_pct": round(100 * self.server_cpu_s / self.seconds, 1),
            "server_cpu_us_per_request": round(1e6 * self.server_cpu_s / n, 1),
            "load_cpu_pct": round(100 * self.load_cpu_s / self.seconds, 1),
            "load_cpu_us_per_request": round(1e6 * self.load_cpu_s / n, 1),
            "presign_cpu_s": round(self.prepare_cpu_s, 3),
            "resigned": self.resigned,
            "machine_busy_pct": round(self.machine_busy_pct, 1),
        }


# -- setup --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


#: The server with uvicorn.run's keyword arguments overridden (`--uvicorn`, `--plain-server`),
#: read from GRIDMARKET_BENCH_UVICORN (JSON), for comparisons. Not a production path.
OVERRIDDEN_SERVER = (
    "import json, os, uvicorn; run = uvicorn.run; "
    "extra = json.loads(os.environ['GRIDMARKET_BENCH_UVICORN']); "
    "uvicorn.run = lambda *a, **k: run(*a, **{**k, **extra}); "
    "from gridmarket.cli import app; app()"
)


def start_server(
    data_dir: Path,
    extra_env: dict[str, str],
    uvicorn_options: dict[str, Any],
    python_args: list[str],
    serve_args: list[str],
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    dropped = ("GRIDMARKET_HOME", "GRIDMARKET_DATABASE_URL", "GRIDMARKET_SERVER")
    env = {k: v for k, v in os.environ.items() if k not in dropped} | RATE_LIMITS_OFF | extra_env
    env["GRIDMARKET_BENCH_UVICORN"] = json.dumps(uvicorn_options)
    log = (data_dir.parent / "server.log").open("ab")
    launcher = ["-c", OVERRIDDEN_SERVER] if uvicorn_options else ["-m", "gridmarket"]
    command = [sys.executable, *python_args, *launcher, "serve", *serve_args, "--port", str(port)]
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux); 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:8]]
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


class Loaders:
    """The load processes (`http_load.worker`), each with its share of the keys."""

    def __init__(self, url: str, keys: list[dict[str, str]], processes: int) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for i in range(processes):
            ours, theirs = context.Pipe()
            spec = {
                "host": host,
                "port": int(port),
                "keys": keys[i::processes],
                "market": MARKET,
                "price": PRICE,
            }
            process = context.Process(target=http_load.worker, args=(theirs, spec), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def phase(self, name: str, requests: int, connections: int, server_pid: int) -> Phase:
        n = len(self.pipes)
        # On stderr as it happens, so that a profiler can be attached to one phase.
        print(f"phase {name}: starting (server pid {server_pid})", file=sys.stderr, flush=True)
        for i, pipe in enumerate(self.pipes):
            pipe.send(("prepare", (name, requests // n + (1 if i < requests % n else 0))))
        prepare_cpu = sum(pipe.recv()[1] for pipe in self.pipes)
        server_cpu = cpu_seconds(server_pid)
        busy, total = machine_busy_s()
        for i, pipe in enumerate(self.pipes):
            pipe.send(("go", connections // n + (1 if i < connections % n else 0)))
        results = [pipe.recv()[1] for pipe in self.pipes]
        server_cpu = cpu_seconds(server_pid) - server_cpu
        busy_after, total_after = machine_busy_s()
        machine_pct = 100 * (busy_after - busy) / max(total_after - total, 1e-9)
        statuses: dict[int, int] = {}
        for result in results:
            for status, count in result["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        seconds = max(r["ended"] for r in results) - min(r["started"] for r in results)
        return Phase(
            name,
            seconds,
            [latency for r in results for latency in r["latencies_s"]],
            statuses,
            server_cpu,
            sum(r["cpu_s"] for r in results),
            prepare_cpu,
            sum(r["resigned"] for r in results),
            machine_pct,
        )

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(("stop", None))
        for process in self.processes:
            process.join(timeout=10)


def run(
    url: str, keys: list[dict[str, str]], args: argparse.Namespace, server_pid: int
) -> list[Phase]:
    loaders = Loaders(url, keys, args.load_processes)
    try:
        loaders.phase("health_warmup", 200, args.connections, server_pid)
        names = ("health", "me", "orders", "health_after")
        return [loaders.phase(n, args.orders, args.connections, server_pid) for n in names]
    finally:
        loaders.close()


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=6_000, help="requests per phase")
    parser.add_argument("--clients", type=int, default=8, help="signing keys (accounts)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--load-processes", type=int, default=1, help="load processes")
    parser.add_argument("--plain-server", action="store_true", help="server on asyncio + h11")
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an argument for `gridmarket serve`, e.g. --serve-arg=--access-log",
    )
    parser.add_argument(
        "--uvicorn",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a uvicorn.run argument, e.g. access_log=false",
    )
    parser.add_argument(
        "--server-python-args",
        default="",
        metavar="ARGS",
        help="before the server's module, e.g. '-m cProfile -o server.prof' (profiles it)",
    )
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="server env"
    )
    args = parser.parse_args()
    if args.orders < 1 or args.clients < 2 or args.connections < 1:
        parser.error("--orders and --connections must be at least 1, --clients at least 2")
    if not 1 <= args.load_processes <= args.clients:
        parser.error("--load-processes must be between 1 and --clients")
    extra_env = dict(item.split("=", 1) for item in args.server_env)
    uvicorn_options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.uvicorn)}
    if args.plain_server:
        uvicorn_options |= {"loop": "asyncio", "http": "h11"}
    sellers_n = args.clients // 2
    buyers_n = args.clients - sellers_n
    # Room for an uneven split of keys over load processes.
    per_client = 2 * -(-args.orders // args.clients) + 1

    with tempfile.TemporaryDirectory(prefix="gm-bench-http-") as tmp:
        data_dir = Path(tmp) / "home"
        data_dir.mkdir()
        process, url = start_server(
            data_dir, extra_env, uvicorn_options, args.server_python_args.split(), args.serve_arg
        )
        try:
            token = (data_dir / "operator-token").read_text().strip()
            seller_keys = open_sellers(url, token, sellers_n, per_client)
            buyer_keys = open_buyers(url, token, buyers_n, deposit_usd=2 * per_client + 100)
            keys = [
                {"name": f"s{i}", "side": "sell", "key": k} for i, k in enumerate(seller_keys)
            ] + [{"name": f"b{i}", "side": "buy", "key": k} for i, k in enumerate(buyer_keys)]
            phases = run(url, keys, args, process.pid)
            stats = httpx.get(f"{url}/v1/markets/{MARKET}/stats", timeout=10).json()["data"]
        finally:
            process.terminate()
            process.wait(timeout=30)

    report: dict[str, Any] = {
        "requests_per_phase": args.orders,
        "clients": args.clients,
        "connections": args.connections,
        "load_processes": args.load_processes,
        "uvicorn_overrides": uvicorn_options,
        "serve_args": args.serve_arg,
        "cpus": os.cpu_count(),
    }
    for phase in phases:
        summary = phase.summary()
        report[phase.name] = summary
        print(
            f"{phase.name:>12}: {summary['per_second']:>8.1f} req/s"
            f"  p50 {summary['p50_ms']:6.2f} ms  p99 {summary['p99_ms']:6.2f} ms"
            f"  server CPU {summary['server_cpu_pct']:5.1f}%"
            f" ({summary['server_cpu_us_per_request']:.0f} us/req)"
            f"  load CPU {summary['load_cpu_pct']:5.1f}%"
            f" ({summary['load_cpu_us_per_request']:.0f} us/req)"
            f"  machine {summary['machine_busy_pct']:.0f}% busy  {summary['statuses']}"
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
        f" trades made: {report['trades']}; re-signed: {placed.resigned}"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()

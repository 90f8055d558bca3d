"""What the consumption gateway adds: the same chat requests straight to a fast local upstream
and through `gridmarket serve`, in one run, streaming and not, at several concurrencies.

    .venv/bin/python bench/gateway.py [--requests 400] [--concurrency 1,16,128]

Set-up, all real: the upstream is `bench/fast_upstream.py` (a fixed OpenAI-compatible answer,
no generation) in its own process; the market is a real `gridmarket serve` on a temporary
SQLite store (synchronous=FULL) in another. A supplier account is opened over the admin API,
issues units and sells them; a consumer buys them and moves them to consumption (the signed
Trading API, through `gridmarket.client`); then the server is restarted with the upstream as
that supplier's endpoint (`--supplier`). Every gateway request therefore does the whole path:
key check, validation, local token count, a logged commit of tokens, the upstream call, and
a durable settlement with its receipt (settled after the answer, as in production).

Measured per request, in this process with httpx2 (one connection per concurrent client): total
latency, and for streams the time to the first content chunk (TTFT). Printed per concurrency
and mode: direct and gateway requests/s, p50 and p99, and what the gateway adds (gateway
percentile minus direct percentile). The load generator, the upstream and the server share
the machine's cores, so requests/s are floors. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
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

import httpx2

from gridmarket.client import Client, Credentials

ROOT = Path(__file__).resolve().parent
MARKET = "text-prime"
UNITS = 40  # 40M tokens: far more than any run commits
STARTUP_TIMEOUT_S = 60
BODY: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Say something short about markets, please."}],
    "max_tokens": 16,
}


class Result(NamedTuple):
    path: str  # direct | gateway
    stream: bool
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    #: CPU of the process that answered (the upstream for direct, the server for gateway), as
    #: a share of one core over the phase: near 100% means that process is the bottleneck.
    answering_cpu_pct: float = 0.0
    #: This (load) process's CPU over the phase: near 100% means the load generator is the
    #: bottleneck, not what it measures.
    load_cpu_pct: float = 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited with {process.returncode}")
        try:
            if httpx2.get(url + path, timeout=1).status_code < 500:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start in {STARTUP_TIMEOUT_S} s")


def start_server(home: Path, port: int, args: list[str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GRIDMARKET_HOME": str(home),
        "GRIDMARKET_BUILTIN_SUPPLIER": "0",
        "GRIDMARKET_CONSUMPTION_RATE_LIMIT": "1000000000",
        "GRIDMARKET_RATE_LIMIT_REQUESTS": "1000000000",
    }
    # GRIDMARKET_BENCH_PROFILE=FILE profiles the server's main thread (the event loop) with
    # cProfile; read it with `python -m pstats FILE` after the run.
    profile = os.environ.get("GRIDMARKET_BENCH_PROFILE")
    python = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else [])]
    command = [*python, "-m", "gridmarket", "serve", "--port", str(port), *args]
    log = open(home / "server.log", "ab")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    wait_until_up(f"http://127.0.0.1:{port}", process, "/v1/health")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def admin(url: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx2.post(
        url + path, json=body, headers={"authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def open_market(url: str, home: Path) -> tuple[str, str]:
    """A supplier selling UNITS units and a consumer holding them in consumption: the
    supplier's account id and the consumer's consumption key."""
    token = (home / "operator-token").read_text().strip()
    supplier = admin(
        url, token, "/v1/admin/accounts", {"name": "sup", "supplier": True, "mode": "advanced"}
    )
    buyer = admin(
        url, token, "/v1/admin/accounts", {"name": "buy", "mode": "advanced", "deposit_usd": "1000"}
    )
    admin(
        url,
        token,
        f"/v1/admin/accounts/{supplier['account_id']}/capacity",
        {"instrument_id": MARKET, "capacity_tokens_per_min": 10**9},
    )
    with Client(url, credentials=_credentials(supplier)) as seller:
        seller.issue_supply(MARKET, UNITS)
        seller.transfer_from_issuance(MARKET, UNITS)
        seller.place_order(MARKET, "sell", UNITS, price="1.000")
    with Client(url, credentials=_credentials(buyer)) as consumer:
        consumer.place_order(MARKET, "buy", UNITS, type="market")
        consumer.transfer_to_consumption(MARKET, UNITS)
    return supplier["account_id"], buyer["consumption_key"]


def _credentials(created: dict[str, Any]) -> Credentials:
    return Credentials.from_key_document(created, "create-account answer")


async def _request(
    http: httpx2.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[float, float | None]:
    started = time.perf_counter()
    if not body.get("stream"):
        response = await http.post(url, json=body, headers=headers)
        assert response.status_code == 200, response.text
        return (time.perf_counter() - started) * 1000, None
    first: float | None = None
    async with http.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if first is None and line.startswith("data: ") and '"content"' in line:
                first = (time.perf_counter() - started) * 1000
    return (time.perf_counter() - started) * 1000, first


async def run_phase(
    path: str,
    base: str,
    key: str,
    model: str,
    stream: bool,
    concurrency: int,
    requests: int,
    answering_pid: int,
) -> Result:
    url = f"{base}/v1/chat/completions"
    headers = {"authorization": f"Bearer {key}"}
    body = {**BODY, "model": model, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    latencies: list[float] = []
    ttfts: list[float] = []
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits, timeout=60) as http:
        await _request(http, url, headers, body)  # warm the connection and the path
        per_client = max(1, requests // concurrency)

        async def client() -> None:
            for _ in range(per_client):
                total, first = await _request(http, url, headers, body)
                latencies.append(total)
                if first is not None:
                    ttfts.append(first)

        started = time.perf_counter()
        cpu_before = cpu_seconds(answering_pid)
        load_before = cpu_seconds(os.getpid())
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu_pct = 100 * (cpu_seconds(answering_pid) - cpu_before) / elapsed
        load_pct = 100 * (cpu_seconds(os.getpid()) - load_before) / elapsed
    return Result(
        path,
        stream,
        concurrency,
        len(latencies) / elapsed,
        _pct(latencies, 50),
        _pct(latencies, 99),
        _pct(ttfts, 50) if ttfts else None,
        _pct(ttfts, 99) if ttfts else None,
        cpu_pct,
        load_pct,
    )


def _pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per phase")
    parser.add_argument("--concurrency", default="1,16,128")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    upstream_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(ROOT / "fast_upstream.py"), str(upstream_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="gm-bench-gw-") as tmp:
        home = Path(tmp)
        port = free_port()
        server = start_server(home, port, [])
        try:
            wait_until_up(upstream_url, upstream, "/")
            base = f"http://127.0.0.1:{port}"
            supplier_id, key = open_market(base, home)
            stop(server)
            entry = f"{MARKET}={upstream_url}/v1;model=bench;account={supplier_id};name=bench"
            server = start_server(home, port, ["--supplier", entry])
            for concurrency in levels:
                for stream in (False, True):
                    for path, url, model, pid in (
                        ("direct", upstream_url, "bench", upstream.pid),
                        ("gateway", base, MARKET, server.pid),
                    ):
                        result = asyncio.run(
                            run_phase(
                                path, url, key, model, stream, concurrency, args.requests, pid
                            )
                        )
                        results.append(result)
                        print(_line(result), flush=True)
        finally:
            stop(server)
            stop(upstream)
    _report(results)


def _line(r: Result) -> str:
    ttft = ""
    if r.ttft_p50_ms is not None:
        ttft = f"  ttft p50 {r.ttft_p50_ms:.2f} p99 {r.ttft_p99_ms:.2f}"
    kind = "stream" if r.stream else "plain "
    return (
        f"{r.path:8} {kind} c={r.concurrency:<4} {r.requests_per_s:8.1f} req/s  "
        f"p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms{ttft}  "
        f"answering process CPU {r.answering_cpu_pct:5.1f}%  load CPU {r.load_cpu_pct:5.1f}%"
    )


def _report(results: list[Result]) -> None:
    print("\nadded by the gateway (gateway minus direct, same run):")
    summary: list[dict[str, Any]] = []
    for r in results:
        if r.path != "gateway":
            continue
        d = next(
            x
            for x in results
            if x.path == "direct" and x.stream == r.stream and x.concurrency == r.concurrency
        )
        row = {
            "stream": r.stream,
            "concurrency": r.concurrency,
            "gateway_requests_per_s": round(r.requests_per_s, 1),
            "direct_requests_per_s": round(d.requests_per_s, 1),
            "added_p50_ms": round(r.p50_ms - d.p50_ms, 2),
            "added_p99_ms": round(r.p99_ms - d.p99_ms, 2),
            "server_cpu_pct": round(r.answering_cpu_pct, 1),
            "load_cpu_pct": round(r.load_cpu_pct, 1),
        }
        if r.ttft_p50_ms is not None and d.ttft_p50_ms is not None:
            assert r.ttft_p99_ms is not None and d.ttft_p99_ms is not None
            row["added_ttft_p50_ms"] = round(r.ttft_p50_ms - d.ttft_p50_ms, 2)
            row["added_ttft_p99_ms"] = round(r.ttft_p99_ms - d.ttft_p99_ms, 2)
        summary.append(row)
        print(
            f"  {'stream' if r.stream else 'plain '} c={r.concurrency:<4} "
            f"+p50 {row['added_p50_ms']:7.2f} ms  +p99 {row['added_p99_ms']:7.2f} ms  "
            f"gateway {row['gateway_requests_per_s']:.1f} req/s "
            f"(direct {row['direct_requests_per_s']:.1f})"
        )
    print(json.dumps({"bench": "gateway", "results": summary}))


if __name__ == "__main__":
    main()

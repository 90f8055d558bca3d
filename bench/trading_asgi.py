"""CPU per request of the Trading API's app itself: no sockets, no HTTP parsing, no access log.

    .venv/bin/python bench/trading_asgi.py [--requests 3000] [--concurrency 32] [--profile FILE]

The production app (`bootstrap.build_app`, a fresh SQLite data dir, synchronous=FULL) driven
in-process through ASGI: lifespan started by hand, then `--requests` calls of each kind with
`--concurrency` in flight, each a pre-built scope and body, signed before the clock starts.
Reported per kind, in microseconds of this process's CPU time (every thread: the group commit's
too) per request: `health` (routing + JSON), `me` (+ signature check and key lookup), `orders`
(+ order parsing, the sequencer, the commit, the Order JSON), and `verify` alone (one Ed25519
verification in a loop). The differences split an order's cost into its parts; `--profile`
writes a cProfile of one kind (`--profile-kind`, orders by default; read it with
`python -m pstats FILE`).

Accounts come from the admin API and the supplier endpoints, through the same ASGI calls, as
`trading_http.py` opens them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.signing import VerifyKey

from gridmarket.auth.signing import Signer
from gridmarket.bootstrap import build_app
from gridmarket.settings import Settings

MARKET = "text-prime"
Headers = list[tuple[bytes, bytes]]


class Driver:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(
        self, method: str, path: str, headers: Headers, body: bytes
    ) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench"), *headers],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    async def admin(self, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = [(b"authorization", f"Bearer {token}".encode())]
        status, raw = await self.call("POST", path, _json(headers), json.dumps(body).encode())
        if status not in (200, 201):
            raise SystemExit(f"{path}: {status} {raw!r}")
        data: dict[str, Any] = json.loads(raw)["data"]
        return data

    async def signed(self, signer: Signer, method: str, path: str, body: bytes) -> int:
        status, _ = await self.call(method, path, signed_headers(signer, method, path, body), body)
        return status


def _json(headers: Headers) -> Headers:
    return [*headers, (b"content-type", b"application/json")]


def signed_headers(signer: Signer, method: str, path: str, body: bytes) -> Headers:
    signed = signer.sign_request(method, path, body, int(time.time()))
    headers = [(k.encode(), v.encode()) for k, v in signed.items()]
    return _json(headers) if body else headers


async def open_accounts(driver: Driver, token: str, pairs: int, units: int) -> list[Signer]:
    """`pairs` sellers with `units` units in trading and `pairs` funded buyers, interleaved."""
    signers: list[Signer] = []
    for i in range(pairs):
        seller = await driver.admin(
            token, "/v1/admin/accounts", {"name": f"s{i}", "mode": "advanced", "supplier": True}
        )
        capacity = {"instrument_id": MARKET, "capacity_tokens_per_min": 10**12}
        await driver.admin(token, f"/v1/admin/accounts/{seller['account_id']}/capacity", capacity)
        signer = Signer(base64.b64decode(seller["signing_key"]["private_key"]))
        body = json.dumps({"instrument_id": MARKET, "quantity": units}).encode()
        for path in ("/v1/supply-issuances", "/v1/issuance-accounts/transfer"):
            if await driver.signed(signer, "POST", path, body) not in (200, 201):
                raise SystemExit(f"{path} refused")
        buyer = await driver.admin(
            token,
            "/v1/admin/accounts",
            {"name": f"b{i}", "mode": "advanced", "deposit_usd": str(2 * units + 100)},
        )
        signers += [signer, Signer(base64.b64decode(buyer["signing_key"]["private_key"]))]
    return signers


def build_requests(
    kind: str, signers: list[Signer], n: int
) -> list[tuple[str, str, Headers, bytes]]:
    built = []
    for k in range(n):
        index = k % len(signers)
        signer = signers[index]
        if kind == "health":
            built.append(("GET", "/v1/health", [], b""))
        elif kind == "me":
            built.append(("GET", "/v1/me", signed_headers(signer, "GET", "/v1/me", b""), b""))
        else:
            order = {
                "market_id": MARKET,
                "side": "sell" if index % 2 == 0 else "buy",
                "type": "limit",
                "quantity": "1",
                "price": "1.000",
                "time_in_force": "gtc",
                "client_order_id": f"{kind}-{k}",
            }
            body = json.dumps(order).encode()
            headers = signed_headers(signer, "POST", "/v1/orders", body)
            built.append(("POST", "/v1/orders", headers, body))
    return built


async def run_kind(
    driver: Driver, requests: list[tuple[str, str, Headers, bytes]], concurrency: int
) -> tuple[float, float, dict[int, int]]:
    statuses: dict[int, int] = {}
    queue = iter(requests)

    async def worker() -> None:
        for method, path, headers, body in queue:
            status, _ = await driver.call(method, path, headers, body)
            statuses[status] = statuses.get(status, 0) + 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu, time.perf_counter() - wall, statuses


async def main_async(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    off = {"requests": 10**6, "orders_per_second": 10**6, "orders_per_minute": 10**6}
    settings = Settings.resolve(data_dir=data_dir, rate_limits=off | {"order_burst": 10**6})
    app = build_app(settings)
    driver = Driver(app)
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    done = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            done.set()

    lifespan = asyncio.create_task(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            startup.get,
            lifespan_send,
        )
    )
    await done.wait()
    gateway = getattr(app.state, "gateway", None)
    if gateway is not None:  # the tokenizer loads in a thread at start: not an order's cost
        await gateway.start()
    token = (data_dir / "operator-token").read_text().strip()
    signers = await open_accounts(driver, token, 4, args.requests)
    report: dict[str, Any] = {}
    await run_kind(driver, build_requests("health", signers, 200), args.concurrency)  # warm-up
    for kind in ("health", "me", "orders"):
        requests = build_requests(kind, signers, args.requests)
        profiler = cProfile.Profile() if args.profile and kind == args.profile_kind else None
        if profiler:
            profiler.enable()
        cpu, wall, statuses = await run_kind(driver, requests, args.concurrency)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        report[kind] = {
            "cpu_us_per_request": round(1e6 * cpu / len(requests), 1),
            "per_second": round(len(requests) / wall, 1),
            "statuses": {str(k): v for k, v in statuses.items()},
        }
    await startup.put({"type": "lifespan.shutdown"})
    await lifespan
    return report


def verify_us() -> float:
    """One Ed25519 verification as the server does it (libsodium, `auth.signing`)."""
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    message = b"x" * 200
    signature = key.sign(message)
    public = VerifyKey(raw)
    cpu = time.process_time()
    for _ in range(2000):
        public.verify(message, signature)
    return round((time.process_time() - cpu) / 2000 * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", default=None, help="cProfile output file")
    parser.add_argument(
        "--profile-kind", default="orders", choices=("health", "me", "orders"), help="profiled"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gm-bench-asgi-") as tmp:
        data_dir = Path(tmp) / "home"
        data_dir.mkdir()
        report = asyncio.run(main_async(args, data_dir))
    report["verify_cpu_us"] = verify_us()
    for kind in ("health", "me", "orders"):
        print(
            f"{kind:>8}: {report[kind]['cpu_us_per_request']:>7.1f} us CPU/request  {report[kind]}"
        )
    print(f"  verify: {report['verify_cpu_us']:>7.1f} us CPU (one Ed25519 verification)")
    print(json.dumps(report))


if __name__ == "__main__":
    main()

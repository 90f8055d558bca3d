"""The load side of `trading_http.py`: lean HTTP/1.1 keep-alive clients in their own process.

Each load process (`worker`, started with multiprocessing's `spawn`) gets some signing keys and
a number of keep-alive connections, and for every phase the parent sends it:

1. `prepare`: build every request of the phase as pre-encoded bytes, signing them now, ahead
   of the send loop (each order a unique `client_order_id`, so a unique body and signature,
   and a timestamp of now); answers `ready` with the CPU time that took.
2. `go`: run the phase: each connection writes one request, reads its response (status line,
   headers up to the blank line, then exactly `content-length` bytes), times it with
   `time.perf_counter` (CLOCK_MONOTONIC: the same clock in every process), and sends the next.
   A request whose signature is older than `RESIGN_AFTER_S` when its turn comes is signed
   afresh first (a long phase never sends a stale timestamp); the count is reported.
   Answers with the start and end instants, every latency, the statuses and the process's
   CPU time for the phase.

A response that is not `content-length` framed (chunked) stops the bench with an error: the
server's JSON responses all carry a length, and guessing would measure the wrong thing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from gridmarket.auth.signing import Signer

#: The server accepts timestamps within 30 s; re-sign well before that.
RESIGN_AFTER_S = 20


@dataclass
class Key:
    name: str
    side: str
    signer: Signer


@dataclass
class Request:
    payload: bytes
    signed_at_s: int
    key: Key | None = None
    body: bytes = b""


def _head(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if method != "GET" or body:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def order_body(key: Key, market: str, price: str, k: int, phase: str) -> bytes:
    body = {
        "market_id": market,
        "side": key.side,
        "type": "limit",
        "quantity": "1",
        "price": price,
        "time_in_force": "gtc",
        "client_order_id": f"{phase}-{key.name}-{k}",
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signed(key: Key, method: str, path: str, host: str, body: bytes) -> Request:
    now_s = int(time.time())
    headers = key.signer.sign_request(method, path, body, now_s)
    if body:
        headers["content-type"] = "application/json"
    return Request(_head(method, path, host, headers, body), now_s, key, body)


def build(
    phase: str, keys: list[Key], count: int, host: str, spec: dict[str, Any]
) -> list[Request]:
    """`count` requests of `phase`, round-robin over the keys, signed now."""
    requests: list[Request] = []
    for k in range(count):
        key = keys[k % len(keys)]
        if phase.startswith("health"):
            requests.append(Request(_head("GET", "/v1/health", host, {}, b""), 0))
        elif phase == "me":
            requests.append(signed(key, "GET", "/v1/me", host, b""))
        else:
            body = order_body(key, spec["market"], spec["price"], k, phase)
            requests.append(signed(key, "POST", "/v1/orders", host, body))
    return requests


def fresh(request: Request, host: str) -> tuple[bytes, bool]:
    """The bytes to send; re-signed (True) if the signature has grown old."""
    if request.key is None or int(time.time()) - request.signed_at_s < RESIGN_AFTER_S:
        return request.payload, False
    method, path = ("POST", "/v1/orders") if request.body else ("GET", "/v1/me")
    return signed(request.key, method, path, host, request.body).payload, True


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"transfer-encoding":
            raise RuntimeError(f"response not content-length framed: {head!r}")
    if length < 0:
        raise RuntimeError(f"response without content-length: {head!r}")
    await reader.readexactly(length)
    return status


async def _run(host: str, port: int, connections: int, requests: list[Request]) -> dict[str, Any]:
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    resigned = 0
    queue = iter(requests)
    host_header = f"{host}:{port}"

    async def drive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal resigned
        for request in queue:  # one shared iterator: each request is sent once
            payload, again = fresh(request, host_header)
            resigned += again
            started = time.perf_counter()
            writer.write(payload)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(drive(r, w) for r, w in streams))
    ended = time.perf_counter()
    cpu = time.process_time() - cpu_before
    for _, writer in streams:
        writer.close()
    return {
        "started": started,
        "ended": ended,
        "latencies_s": latencies,
        "statuses": statuses,
        "cpu_s": cpu,
        "resigned": resigned,
    }


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def worker(pipe: Connection, spec: dict[str, Any]) -> None:
    """One load process: serve `prepare`/`go` requests from the parent until `stop`."""
    keys = [Key(k["name"], k["side"], Signer(base64.b64decode(k["key"]))) for k in spec["keys"]]
    host, port = spec["host"], spec["port"]
    loop = _new_loop()
    requests: list[Request] = []
    while True:
        command, argument = pipe.recv()
        if command == "stop":
            break
        if command == "prepare":
            phase, count = argument
            cpu = time.process_time()
            requests = build(phase, keys, count, f"{host}:{port}", spec)
            pipe.send(("ready", time.process_time() - cpu))
        elif command == "go":
            connections = min(argument, max(1, len(requests)))
            pipe.send(("done", loop.run_until_complete(_run(host, port, connections, requests))))
    loop.close()

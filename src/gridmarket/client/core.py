"""What both clients share: a `Call` becomes a signed `httpx.Request`; an answer, a result.

`Engine.request(call)` builds the request: the body serialised once (compact JSON, the exact
bytes sent and signed), then, for signed calls, the three `x-thegrid-*` headers over
timestamp + METHOD + path + body (`gridmarket.auth.signing`), the path taken from the built
URL exactly as it will be sent (percent-encoding kept, query excluded). Each attempt is signed
afresh, so a retry carries a new timestamp.

Identical writes within one second would carry identical signatures, which the server's replay
guard refuses (`replayed_request`); `_WriteClock` therefore never signs the same key +
method + path + body twice with the same second, stepping back a second instead (still well
inside the 30 s window). It remembers writes for two windows, at most `MAX_REMEMBERED_WRITES`,
and is shared by every client in the process (`WRITE_CLOCK`), since two clients holding one key
collide just the same. Another process with the same key can still collide: the server refuses
such a write before acting on it, so a `replayed_request` refusal is retried, re-signed with
the next free second.

`Engine.result(call, response)` turns a 2xx into the call's typed result and anything else
into the `GridmarketError` subclass for its status. `Engine.retry_delay_s` says whether to try
again: only when the server cannot have acted (connection refused, a `replayed_request`
refusal, or a 503, which Gridmarket answers before applying anything), at most `max_retries`
times, honouring `Retry-After`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

from gridmarket.auth.signing import TIMESTAMP_WINDOW_S
from gridmarket.client.calls import Call
from gridmarket.client.credentials import Credentials
from gridmarket.client.errors import (
    CredentialsError,
    ResponseFormatError,
    error_from_answer,
    retry_after_seconds,
)
from gridmarket.client.parse import decode_json

T = TypeVar("T")

SERVER_ENV = "GRIDMARKET_SERVER"
#: Where `gridmarket serve` listens by default (settings.DEFAULT_HOST, DEFAULT_PORT).
DEFAULT_SERVER = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRY_DELAY_S = 5.0
MAX_REMEMBERED_WRITES = 10_000
USER_AGENT = "gridmarket-client/1.0"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def normalise_server(server: str) -> str:
    """`http://host:8000`, from that or `http://host:8000/v1/` (The Grid's style of base URL)."""
    base = server.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"server must be an http:// or https:// URL, not {server!r}")
    return base.removesuffix("/v1")


class _WriteClock:
    """Whole-second timestamps that never repeat for the same write (see the module doc)."""

    def __init__(self) -> None:
        self._used: dict[bytes, list[int]] = {}
        self._lock = threading.Lock()

    def timestamp(self, signer: str, method: str, path: str, body: bytes, now_s: int) -> int:
        if method not in WRITE_METHODS:
            return now_s
        text = f"{signer} {method} {path} ".encode()
        key = hashlib.sha256(text + body).digest()
        horizon = now_s - 2 * TIMESTAMP_WINDOW_S
        with self._lock:
            if len(self._used) >= MAX_REMEMBERED_WRITES:
                self._used = {k: v for k, v in self._used.items() if v[-1] > horizon}
                if len(self._used) >= MAX_REMEMBERED_WRITES:
                    self._used.clear()
            used = [t for t in self._used.get(key, ()) if t > horizon]
            when = now_s
            while when in used:
                when -= 1
            used.append(when)
            self._used[key] = used
            return when


#: One memory of signed writes for the whole process (see the module docstring).
WRITE_CLOCK = _WriteClock()


class Engine:
    """Builds requests and reads answers for one server and (optionally) one signing key."""

    def __init__(
        self,
        server: str,
        credentials: Credentials | None,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server = normalise_server(server)
        self.credentials = credentials
        self.max_retries = max_retries
        self._clock = clock

    def request(self, call: Call[T]) -> httpx.Request:
        content = b"" if call.body is None else json.dumps(call.body, separators=(",", ":"))
        raw = content.encode("utf-8") if isinstance(content, str) else content
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        request = httpx.Request(
            call.method,
            self.server + call.path,
            params=list(call.query) or None,
            content=raw,
            headers=headers,
        )
        if call.auth == "signed" and self.credentials is None:
            raise CredentialsError(
                f"{call.method} {call.path} needs a signing key: pass a key file"
                " (--key-file, GRIDMARKET_KEY_FILE) or a private key (GRIDMARKET_SIGNING_KEY)"
            )
        if call.auth != "unsigned" and self.credentials is not None:
            path = request.url.raw_path.decode("ascii").partition("?")[0]
            now_s = int(self._clock())
            fingerprint = self.credentials.fingerprint
            when = WRITE_CLOCK.timestamp(fingerprint, call.method, path, raw, now_s)
            request.headers.update(
                self.credentials.signer.sign_request(call.method, path, raw, when)
            )
        return request

    def result(self, call: Call[T], response: httpx.Response) -> T:
        body = _decoded(response)
        if response.is_success:
            if body is _UNREADABLE:
                raise ResponseFormatError(
                    f"{call.method} {call.path}: HTTP {response.status_code} but not JSON",
                    status_code=response.status_code,
                )
            return call.parse(body)
        raise error_from_answer(
            response.status_code, response.headers, None if body is _UNREADABLE else body
        )

    def retry_delay_s(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to stop here."""
        if attempt >= self.max_retries:
            return None
        if response is not None and _replay_refused(response):
            return 0.0  # refused before anything was done; the next attempt signs anew
        if response is not None and response.status_code != 503:
            return None
        backoff = 0.25 * (1 << attempt)
        stated = None if response is None else retry_after_seconds(response.headers)
        return min(MAX_RETRY_DELAY_S, backoff if stated is None else max(stated, backoff))


_UNREADABLE = object()
REPLAYED_CODE = "replayed_request"


def _replay_refused(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    body = _decoded(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    return isinstance(errors, dict) and errors.get("code") == REPLAYED_CODE


def _decoded(response: httpx.Response) -> object:
    if not response.content:
        return None
    try:
        return decode_json(response.content)
    except (ValueError, UnicodeDecodeError):
        return _UNREADABLE

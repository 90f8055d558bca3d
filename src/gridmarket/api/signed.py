"""Signed Trading API requests: The Grid's Ed25519 authentication as a FastAPI dependency.

    router = APIRouter(prefix="/v1", route_class=SignedRoute)

    @router.get("/orders")
    async def list_orders(signed: Signed) -> ...:  # signed.account_id, signed.mode

What a request must carry is `auth.signing` (grid-client-contract.md §1.2, lines 38-52): the
message is timestamp + METHOD + path + body, with the path exactly as sent (ASGI `raw_path`,
still percent-encoded, no query) and the body as the raw bytes received.

Order of checks: the signature (`verify_request`, with the server clock in whole seconds and
the registry as the key store; a revoked key is unknown), then, for writes (POST, PUT, PATCH,
DELETE), the per-process `ReplayGuard`, before anything in the request itself is looked at: a
replayed write is `replayed_request` even when its `client_order_id` would have made it
idempotent. Every refusal is a 401 in the envelope `{"errors": {"detail", "code", "message"}}`
(never a 400: The Grid's client turns 400 into a ValidationError, 401 into AUTH_FAILED, lines
78-83), except a full replay guard: 503 with `Retry-After: 1`, which the client retries.

Key lookups go through a small cache (fingerprint -> account, mode, public key, revoked) with a
short TTL, `KEY_CACHE_TTL_S`: a key revoked, or an account switched to another mode, takes
effect within that many seconds; at once in the process that made the change, which calls
`KeyCache.forget_account`. Unknown fingerprints are not cached (each costs one query).

Rate limits (`api.ratelimit`) come last: once the request is authenticated and past the replay
guard, it is charged to its signing key; over the limit it is a 429 and the route never runs.
`SignedRoute` adds the `x-ratelimit-*` headers to every response of an authenticated request
and declares the 401 and 429 answers in the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gridmarket.adapters import registry
from gridmarket.adapters.registry import AccountRecord, Mode
from gridmarket.api import ratelimit
from gridmarket.api.errors import error_response
from gridmarket.api.responses import SIGNED_RESPONSES
from gridmarket.auth.outcomes import AuthCode, AuthFailure, Fingerprint
from gridmarket.auth.replay import ReplayGuard, is_signed_write
from gridmarket.auth.signing import FINGERPRINT_HEADER, verify_request
from gridmarket.core.ids import AccountId
from gridmarket.service.market import MarketService

KEY_CACHE_TTL_S = 5.0
KEY_CACHE_MAX_ENTRIES = 10_000


class SignedAccount(NamedTuple):
    """Who signed the request: the registry record of the key's account as of the key lookup
    (at most `KEY_CACHE_TTL_S` old), with its id and mode (`easy`/`advanced`) at hand."""

    account: AccountRecord

    @property
    def account_id(self) -> AccountId:
        return self.account.account_id

    @property
    def mode(self) -> Mode:
        return self.account.mode


class KeyCacheEntry(NamedTuple):
    account: AccountRecord
    public_key_raw: bytes
    revoked: bool
    expires_at: float

    @property
    def account_id(self) -> AccountId:
        return self.account.account_id


@dataclass
class Refusal(Exception):
    """An authentication refusal, answered by `SignedRoute` in the error envelope."""

    status_code: int
    code: str
    detail: str
    retry_after: bool = False

    def response(self) -> Response:
        headers = {"Retry-After": "1"} if self.retry_after else None
        return error_response(self.status_code, self.detail, self.code, headers)


class KeyCache:
    """Fingerprint -> key record, bounded, each entry kept `ttl_s` seconds."""

    def __init__(
        self,
        ttl_s: float = KEY_CACHE_TTL_S,
        max_entries: int = KEY_CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, KeyCacheEntry] = {}
        #: Bumped by `forget_account`: a load that began before it does not cache its answer.
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, fingerprint: str, entry: KeyCacheEntry) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; the next lookups refill it
        self._entries[fingerprint] = entry

    def get(self, fingerprint: str) -> KeyCacheEntry | None:
        entry = self._entries.get(fingerprint)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._entries[fingerprint]
            return None
        return entry

    def forget_account(self, account_id: str) -> None:
        """Drop every entry of one account: its key revoked or its mode changed, in this process.

        (Other processes still see the change within `ttl_s`.) A linear scan: the cache is
        bounded, and revocations and mode switches are rare.
        """
        self._generation += 1
        for fingerprint in [f for f, e in self._entries.items() if e.account_id == account_id]:
            del self._entries[fingerprint]

    async def load(self, market: MarketService, fingerprint: str) -> KeyCacheEntry | None:
        """The key from the registry (off the event loop), cached; None if unknown."""
        engine = market.store.engine
        generation = self._generation
        record = await asyncio.to_thread(registry.find_signing_key, engine, fingerprint)
        if record is None:
            return None
        account = await asyncio.to_thread(registry.get_account, engine, record.account_id)
        if account is None:
            return None
        entry = KeyCacheEntry(
            account,
            base64.b64decode(record.public_key),
            record.revoked_at_ms is not None,
            self._clock() + self.ttl_s,
        )
        if generation == self._generation:  # else it may predate a revocation: do not keep it
            self.put(fingerprint, entry)
        return entry


def _auth_state(request: Request) -> tuple[MarketService, KeyCache, ReplayGuard]:
    market = request.app.state.market
    if not isinstance(market, MarketService):
        raise Refusal(503, "service_unavailable", "the market service is not running")
    state = request.app.state
    # Created on first use, per process; no await in between, so exactly once.
    if getattr(state, "signing_key_cache", None) is None:
        state.signing_key_cache = KeyCache()
    if getattr(state, "replay_guard", None) is None:
        state.replay_guard = ReplayGuard()
    return market, state.signing_key_cache, state.replay_guard


def _path_as_sent(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes | bytearray) and raw:
        return bytes(raw).decode("utf-8", errors="replace").partition("?")[0]
    path: str = request.scope["path"]
    return path


async def signed_account(request: Request) -> SignedAccount:
    """Authenticate the request as The Grid does; the signing account, or a `Refusal`."""
    market, cache, guard = _auth_state(request)
    body = await request.body()
    method = request.method.upper()
    path = _path_as_sent(request)
    now_s = int(time.time())

    used: list[KeyCacheEntry] = []

    def lookup(fingerprint: Fingerprint) -> bytes | None:
        entry = cache.get(fingerprint)
        if entry is None or entry.revoked:
            return None
        used.append(entry)
        return entry.public_key_raw

    result = verify_request(request.headers, method, path, body, now_s, lookup)
    if isinstance(result, AuthFailure) and result.code == AuthCode.unknown_fingerprint:
        fingerprint = request.headers.get(FINGERPRINT_HEADER, "")
        if cache.get(fingerprint) is None and await cache.load(market, fingerprint) is not None:
            now_s = int(time.time())
            result = verify_request(request.headers, method, path, body, now_s, lookup)
    if isinstance(result, AuthFailure):
        raise Refusal(401, result.code.value, result.detail)
    if is_signed_write(method):
        admitted = guard.admit(result, now_s)
        if isinstance(admitted, AuthFailure):
            if admitted.code == AuthCode.replay_guard_full:
                raise Refusal(503, admitted.code.value, admitted.detail, retry_after=True)
            raise Refusal(401, admitted.code.value, admitted.detail)
    entry = used[-1]  # the key the signature was verified with
    ratelimit.admit(request, result.fingerprint, body)
    return SignedAccount(entry.account)


Signed = Annotated[SignedAccount, Depends(signed_account)]
"""A route parameter that authenticates the request and gives its account."""


class SignedRoute(APIRoute):
    """A route whose `Refusal`s (raised while resolving `Signed`) become their responses."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["responses"] = {**SIGNED_RESPONSES, **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().handle(scope, receive, ratelimit.with_headers(scope, send))

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except (Refusal, ratelimit.RateLimited) as refusal:
                return refusal.response()

        return route_handler

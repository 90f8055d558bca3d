"""A bounded memory of the signatures of signed writes, so a captured write cannot be resent.

A signature stays acceptable while its timestamp is inside the window (`signing`), so the guard
remembers each admitted write's signature until its *signed timestamp* leaves the window:
`timestamp_s + window_s`. After that the timestamp check refuses the request on its own. A
timestamp up to 30 s ahead of the server is valid, so an entry can live up to 60 s after it
arrives. Reads (GET, HEAD, OPTIONS) are not guarded: replaying one reveals nothing new.

Keyed by the raw signature bytes, not the header text: base64 can spell the same bytes in more
than one way (the unused low bits of the last character). And a third party cannot turn a
captured signature into a different valid one, since OpenSSL's Ed25519 verification enforces
S < L (strong unforgeability), so every replay of a captured write repeats these bytes.

Limits, chosen rather than grown into:
- At most `max_entries` entries. When full and nothing has expired, a new write is refused
  with `replay_guard_full` instead of growing, and instead of forgetting a live entry (which
  would reopen a replay hole). It is a refusal to a genuine request, not an auth failure: the
  edge should answer 503 with `Retry-After: 1` (The Grid's client retries 503, re-signing with
  a fresh timestamp). The default cap allows the bench target of 2,000 signed writes/s held for
  the longest entry lifetime, 60 s, with headroom; per-key rate limits keep one key from
  filling it.
- One process: a replay sent to another server process, or resent just after a restart, is
  not caught. Scaling out needs a shared store with the same semantics.

Concurrency: meant for one asyncio event loop. `admit` never awaits, so it runs atomically on
that loop; it is not thread-safe, and must not be shared across threads or processes.
"""

from __future__ import annotations

import heapq

from gridmarket.auth.outcomes import AuthCode, AuthFailure, Verified
from gridmarket.auth.signing import TIMESTAMP_WINDOW_S

#: 2,000 writes/s x 60 s = 120,000 live entries at most at the bench target; about 250 bytes
#: each (64-byte key, dict slot, heap tuple), so the cap bounds the guard to about 50 MB.
DEFAULT_MAX_ENTRIES = 200_000

SIGNED_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_signed_write(method: str) -> bool:
    """Whether a request with this method goes through the replay guard."""
    return method.upper() in SIGNED_WRITE_METHODS


class ReplayGuard:
    """Admits each signed write's signature once while its timestamp is inside the window."""

    __slots__ = ("_expiries", "_expiry_by_signature", "max_entries", "window_s")

    def __init__(
        self, window_s: int = TIMESTAMP_WINDOW_S, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        assert window_s >= 0 and max_entries > 0
        self.window_s = window_s
        self.max_entries = max_entries
        # signature -> the last second at which its timestamp is still inside the window.
        self._expiry_by_signature: dict[bytes, int] = {}
        # The same entries as (expiry, signature), oldest expiry first, for eviction.
        self._expiries: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return len(self._expiry_by_signature)

    def admit(self, verified: Verified, now_s: int) -> Verified | AuthFailure:
        """`verified` if its signature is new (now remembered), else why it is refused.

        Pass the `now_s` the request was verified with. Checks, in order: the timestamp is
        still inside the window (`expired_timestamp`; it may have left it if the clock moved on
        since verification, and remembering it would be pointless), the signature was not seen
        (`replayed_request`), there is room (`replay_guard_full`).
        """
        self.evict_expired(now_s)
        expiry_s = verified.timestamp_s + self.window_s
        if expiry_s < now_s:
            return AuthFailure(
                AuthCode.expired_timestamp,
                f"timestamp is more than {self.window_s} s behind the server clock; "
                "sign again with the current time",
            )
        if verified.signature in self._expiry_by_signature:
            return AuthFailure(
                AuthCode.replayed_request,
                "this signature was already used; sign each write afresh",
            )
        if len(self._expiry_by_signature) >= self.max_entries:
            return AuthFailure(
                AuthCode.replay_guard_full,
                "too many signed writes in flight; retry in a second",
            )
        self._expiry_by_signature[verified.signature] = expiry_s
        heapq.heappush(self._expiries, (expiry_s, verified.signature))
        return verified

    def evict_expired(self, now_s: int) -> None:
        """Forget every signature whose timestamp has left the window by `now_s`."""
        expiries = self._expiries
        while expiries and expiries[0][0] < now_s:
            expiry_s, signature = heapq.heappop(expiries)
            # The heap and the dict hold the same entries, added and removed together.
            remembered_expiry_s = self._expiry_by_signature.pop(signature)
            assert remembered_expiry_s == expiry_s

"""What an authentication check returns: `Verified`, or an `AuthFailure` with a stable code.

Nothing in this package raises on bad client input; every refusal is one of these values, and
the API edge turns it into its error envelope (a 401 for every code but `replay_guard_full`).

Codes are lower snake_case like the rest of our envelope codes. Where The Grid documents a
name for the same condition, we use it (grid-api-notes.md §2.2 and §6.1;
grid-client-contract.md §5.1):
- `invalid_signature`: the WebSocket mock's `response.reason` [C], and the legacy
  `INVALID_SIGNATURE` [D];
- `expired_timestamp`: the legacy `EXPIRED_TIMESTAMP` (">30 s") [D], for a timestamp too far
  in the past.
The others have no documented name and are ours. The Grid's SDK folds every 401 into
`AUTH_FAILED` whatever the body says, so the code is for people and our own clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

#: base64 (standard alphabet, no padding) of SHA-256 of a raw Ed25519 public key: 43 chars.
Fingerprint = NewType("Fingerprint", str)


class AuthCode(StrEnum):
    missing_signature = "missing_signature"
    missing_timestamp = "missing_timestamp"
    missing_fingerprint = "missing_fingerprint"
    malformed_signature = "malformed_signature"
    malformed_timestamp = "malformed_timestamp"
    malformed_fingerprint = "malformed_fingerprint"
    expired_timestamp = "expired_timestamp"
    future_timestamp = "future_timestamp"
    unknown_fingerprint = "unknown_fingerprint"
    invalid_signature = "invalid_signature"
    replayed_request = "replayed_request"
    replay_guard_full = "replay_guard_full"


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """A refused request: `code` is stable and machine-readable, `detail` is for people."""

    code: AuthCode
    detail: str


@dataclass(frozen=True, slots=True)
class Verified:
    """A request signed by the key whose fingerprint is `fingerprint`, at `timestamp_s`.

    `signature` is the raw 64-byte signature, the replay guard's key; `timestamp_s` tells the
    guard how long that signature stays acceptable.
    """

    fingerprint: Fingerprint
    signature: bytes
    timestamp_s: int

"""The Grid's Ed25519 request signing, both sides: sign (our client) and verify (our server).

A signed Trading API request carries three headers (grid-api-notes.md §2.2,
grid-client-contract.md §1.2):

- `x-thegrid-timestamp`: Unix time in whole seconds, a decimal string. Accepted while it is
  within `TIMESTAMP_WINDOW_S` (30 s) of the server's clock, in either direction, both ends
  included.
- `x-thegrid-fingerprint`: standard-alphabet base64 of SHA-256(raw 32-byte public key), `=`
  padding removed: 43 characters (see `fingerprint`).
- `x-thegrid-signature`: standard base64, with padding, of the 64-byte Ed25519 signature of
  `timestamp + METHOD + path + body`: no separators, METHOD upper-cased, path without the query
  string, body the raw bytes sent (empty when there is none).

The WebSocket `authenticate` event (grid-client-contract.md §5.1, step 2) signs
`timestamp + fingerprint` instead, with no method, path or body.

Verification is pure: the clock (`now_s`) and the key store (`lookup_key`) are passed in, and
every refusal is an `AuthFailure` with a stable code, never an exception. Checks run in a fixed
order, so the same bad request always gets the same code: header presence (signature,
timestamp, fingerprint), timestamp format, timestamp window, fingerprint format, signature
format, key lookup, signature. The window and formats are checked before any lookup or
cryptography, so a stale or garbled request costs next to nothing.

What this module does not do: replay protection (see `replay`), choosing which paths are
signed, or reading the request. The edge must pass the path exactly as it arrived, still
percent-encoded (ASGI `raw_path`, not the decoded `path`), because The Grid's client signs the
URL pathname as sent (grid-client-contract.md §1.2), and the body bytes as received.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from gridmarket.auth.outcomes import AuthCode, AuthFailure, Fingerprint, Verified

SIGNATURE_HEADER = "x-thegrid-signature"
TIMESTAMP_HEADER = "x-thegrid-timestamp"
FINGERPRINT_HEADER = "x-thegrid-fingerprint"

#: "Must be within 30 s of server time" (grid-api-notes.md §2.2 [A][B][C]).
TIMESTAMP_WINDOW_S = 30

PUBLIC_KEY_BYTES = 32
PRIVATE_SEED_BYTES = 32
SIGNATURE_BYTES = 64
_FINGERPRINT_CHARS = 43  # 32 digest bytes in unpadded base64
_SIGNATURE_CHARS = 88  # 64 signature bytes in padded base64

# ASCII digits only (`str.isdigit` and `int` also take other scripts, `+`, `_` and spaces), no
# leading zero, at most 15 digits so parsing stays trivial: the text is signed as sent, so one
# second has exactly one accepted spelling.
_TIMESTAMP_TEXT = re.compile(r"0|[1-9][0-9]{0,14}")

_MISSING = {
    SIGNATURE_HEADER: AuthCode.missing_signature,
    TIMESTAMP_HEADER: AuthCode.missing_timestamp,
    FINGERPRINT_HEADER: AuthCode.missing_fingerprint,
}
_MALFORMED = {
    SIGNATURE_HEADER: AuthCode.malformed_signature,
    TIMESTAMP_HEADER: AuthCode.malformed_timestamp,
    FINGERPRINT_HEADER: AuthCode.malformed_fingerprint,
}

LookupKey = Callable[[Fingerprint], bytes | None]


def fingerprint(public_key_raw: bytes) -> Fingerprint:
    """base64(SHA-256(raw 32-byte Ed25519 public key)), standard alphabet, no `=`: 43 chars.

    Standard, not URL-safe: grid-api-notes.md §2.2 gives `base64( SHA-256( raw 32-byte public
    key ) )` "with trailing `=` removed" [A][B][C], and grid-client-contract.md §1.2 says the
    CLI derives it as "base64 of SHA-256 over the raw 32-byte public key, with `=` padding
    removed (43 chars)". Both say plain base64 beside a signature they call "standard base64";
    neither mentions the URL-safe alphabet. Only the padding is removed.
    """
    assert len(public_key_raw) == PUBLIC_KEY_BYTES, "an Ed25519 public key is 32 bytes"
    digest = hashlib.sha256(public_key_raw).digest()
    return Fingerprint(base64.b64encode(digest).decode("ascii").rstrip("="))


def request_message(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    """The bytes a request signature covers: UTF-8 of timestamp + METHOD + path, then the body.

    Anything after the first `?` in `path` is the query string and is not signed.
    """
    path_only = path.partition("?")[0]
    return (timestamp + method.upper() + path_only).encode("utf-8") + body


def ws_authenticate_message(timestamp: str, fingerprint: str) -> bytes:
    """The bytes the WebSocket `authenticate` signature covers: UTF-8 of timestamp + fingerprint."""
    return (timestamp + fingerprint).encode("utf-8")


class Signer:
    """One private key, loaded once, signing requests: what a client or a load generator keeps.

    Loading the key and deriving its fingerprint costs about as much as a signature, so a
    client that signs many requests should hold one `Signer` rather than call `sign_request`.
    """

    __slots__ = ("_private_key", "fingerprint", "public_key_raw")

    def __init__(self, private_seed: bytes) -> None:
        assert len(private_seed) == PRIVATE_SEED_BYTES, "pass the 32-byte Ed25519 seed"
        self._private_key = Ed25519PrivateKey.from_private_bytes(private_seed)
        self.public_key_raw = self._private_key.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )
        self.fingerprint = fingerprint(self.public_key_raw)

    def sign_request(self, method: str, path: str, body: bytes, timestamp_s: int) -> dict[str, str]:
        """The three `x-thegrid-*` headers for one request."""
        timestamp = str(timestamp_s)
        signature = self._private_key.sign(request_message(timestamp, method, path, body))
        return {
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP_HEADER: timestamp,
            FINGERPRINT_HEADER: self.fingerprint,
        }

    def sign_ws_authenticate(self, timestamp_s: int) -> dict[str, str]:
        """The payload of the WebSocket `authenticate` event: timestamp, fingerprint, signature."""
        timestamp = str(timestamp_s)
        message = ws_authenticate_message(timestamp, self.fingerprint)
        signature = self._private_key.sign(message)
        return {
            "timestamp": timestamp,
            "fingerprint": self.fingerprint,
            "signature": base64.b64encode(signature).decode("ascii"),
        }


def sign_request(
    private_seed: bytes, method: str, path: str, body: bytes, timestamp_s: int
) -> dict[str, str]:
    """The three `x-thegrid-*` headers for one request, signed with `private_seed`."""
    return Signer(private_seed).sign_request(method, path, body, timestamp_s)


def sign_ws_authenticate(private_seed: bytes, timestamp_s: int) -> dict[str, str]:
    """The WebSocket `authenticate` payload `{timestamp, fingerprint, signature}`, all strings."""
    return Signer(private_seed).sign_ws_authenticate(timestamp_s)


def generate_keypair() -> tuple[bytes, bytes]:
    """A new random `(private_seed, public_key_raw)`, 32 bytes each."""
    private_seed = secrets.token_bytes(PRIVATE_SEED_BYTES)
    return private_seed, Signer(private_seed).public_key_raw


def decode_private_key(text: str) -> bytes:
    """The 32-byte seed from a base64 private key as The Grid hands them out.

    Accepts what The Grid's client accepts (grid-client-contract.md §1.2): standard or URL-safe
    base64, padded or not, of a 32-byte seed or a 64-byte secret key (seed then public key).
    Raises `ValueError` otherwise: this reads configuration, not requests.
    """
    stripped = text.strip().rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    alphabet_fixed = padded.replace("-", "+").replace("_", "/")
    raw = base64.b64decode(alphabet_fixed, validate=True)
    if len(raw) not in (PRIVATE_SEED_BYTES, 2 * PRIVATE_SEED_BYTES):
        raise ValueError(f"a private key is 32 or 64 bytes, this one is {len(raw)}")
    return raw[:PRIVATE_SEED_BYTES]


def verify_request(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    now_s: int,
    lookup_key: LookupKey,
) -> Verified | AuthFailure:
    """Check a signed request against the registered keys; `Verified` or the first failure.

    `headers` may be any mapping (names compared case-insensitively; a Starlette `Headers`
    lists repeated headers, and a repeated auth header is malformed). `lookup_key` returns the
    raw public key registered (and not revoked) under a fingerprint, or None.
    """
    found = _auth_headers(headers)
    if isinstance(found, AuthFailure):
        return found
    signature_text, timestamp_text, fingerprint_text = found
    timestamp_s = _parse_timestamp(timestamp_text, now_s)
    if isinstance(timestamp_s, AuthFailure):
        return timestamp_s
    key_fingerprint = _parse_fingerprint(fingerprint_text)
    if isinstance(key_fingerprint, AuthFailure):
        return key_fingerprint
    signature = _parse_signature(signature_text)
    if isinstance(signature, AuthFailure):
        return signature
    message = request_message(timestamp_text, method, path, body)
    return _verify(key_fingerprint, signature, timestamp_s, message, lookup_key)


def verify_ws_authenticate(
    payload: Mapping[str, object], now_s: int, lookup_key: LookupKey
) -> Verified | AuthFailure:
    """Check the WebSocket `authenticate` payload; the same codes and window as a request."""
    texts: list[str] = []
    for field, header in (
        ("signature", SIGNATURE_HEADER),
        ("timestamp", TIMESTAMP_HEADER),
        ("fingerprint", FINGERPRINT_HEADER),
    ):
        value = payload.get(field)
        if value is None or value == "":
            return AuthFailure(_MISSING[header], f"the authenticate payload has no `{field}`")
        if not isinstance(value, str):
            return AuthFailure(_MALFORMED[header], f"`{field}` must be a JSON string")
        texts.append(value)
    signature_text, timestamp_text, fingerprint_text = texts
    timestamp_s = _parse_timestamp(timestamp_text, now_s)
    if isinstance(timestamp_s, AuthFailure):
        return timestamp_s
    key_fingerprint = _parse_fingerprint(fingerprint_text)
    if isinstance(key_fingerprint, AuthFailure):
        return key_fingerprint
    signature = _parse_signature(signature_text)
    if isinstance(signature, AuthFailure):
        return signature
    message = ws_authenticate_message(timestamp_text, key_fingerprint)
    return _verify(key_fingerprint, signature, timestamp_s, message, lookup_key)


def _auth_headers(headers: Mapping[str, str]) -> tuple[str, str, str] | AuthFailure:
    """The signature, timestamp and fingerprint header values, each present exactly once."""
    values: dict[str, list[str]] = {name: [] for name in _MISSING}
    for name, value in headers.items():
        wanted = values.get(name.lower())
        if wanted is not None:
            wanted.append(value)
    for name, seen in values.items():
        if len(seen) > 1:
            return AuthFailure(_MALFORMED[name], f"header {name} was sent {len(seen)} times")
        if not seen or seen[0] == "":
            return AuthFailure(_MISSING[name], f"header {name} is required")
    return (
        values[SIGNATURE_HEADER][0],
        values[TIMESTAMP_HEADER][0],
        values[FINGERPRINT_HEADER][0],
    )


def _parse_timestamp(text: str, now_s: int) -> int | AuthFailure:
    if _TIMESTAMP_TEXT.fullmatch(text) is None:
        return AuthFailure(
            AuthCode.malformed_timestamp,
            "timestamp must be Unix time in whole seconds, as decimal digits",
        )
    timestamp_s = int(text)
    if now_s - timestamp_s > TIMESTAMP_WINDOW_S:
        return AuthFailure(
            AuthCode.expired_timestamp,
            f"timestamp is {now_s - timestamp_s} s behind the server clock "
            f"(at most {TIMESTAMP_WINDOW_S} s allowed); sign again with the current time",
        )
    if timestamp_s - now_s > TIMESTAMP_WINDOW_S:
        return AuthFailure(
            AuthCode.future_timestamp,
            f"timestamp is {timestamp_s - now_s} s ahead of the server clock "
            f"(at most {TIMESTAMP_WINDOW_S} s allowed); check the client's clock",
        )
    return timestamp_s


def _parse_fingerprint(text: str) -> Fingerprint | AuthFailure:
    malformed = AuthFailure(
        AuthCode.malformed_fingerprint,
        "fingerprint must be the 43-character standard base64 (no `=` padding) "
        "of the SHA-256 of the raw public key",
    )
    if len(text) != _FINGERPRINT_CHARS:
        return malformed
    try:
        digest = base64.b64decode(text + "=", validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return malformed
    # Only the canonical spelling: a fingerprint is looked up as text, so a second spelling of
    # the same digest would otherwise surface as a puzzling `unknown_fingerprint`.
    if base64.b64encode(digest).decode("ascii").rstrip("=") != text:
        return malformed
    return Fingerprint(text)


def _parse_signature(text: str) -> bytes | AuthFailure:
    malformed = AuthFailure(
        AuthCode.malformed_signature,
        "signature must be the standard, padded base64 (88 characters) of a 64-byte "
        "Ed25519 signature",
    )
    if len(text) != _SIGNATURE_CHARS:
        return malformed
    try:
        signature = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return malformed
    if len(signature) != SIGNATURE_BYTES:
        return malformed
    return signature


def _verify(
    key_fingerprint: Fingerprint,
    signature: bytes,
    timestamp_s: int,
    message: bytes,
    lookup_key: LookupKey,
) -> Verified | AuthFailure:
    public_key_raw = lookup_key(key_fingerprint)
    if public_key_raw is None:
        return AuthFailure(
            AuthCode.unknown_fingerprint,
            "no active signing key has this fingerprint; register the public key first",
        )
    public_key, key_fingerprint_of_raw = _public_key(public_key_raw)
    # A key filed under another key's fingerprint is a bug in the key store, not a client error.
    assert key_fingerprint_of_raw == key_fingerprint, "key store returned the wrong key"
    try:
        public_key.verify(message, signature)
    except BadSignatureError:
        return AuthFailure(
            AuthCode.invalid_signature,
            "signature does not match timestamp + METHOD + path (no query string) + body "
            "for this key",
        )
    return Verified(key_fingerprint, signature, timestamp_s)


@functools.lru_cache(maxsize=4096)
def _public_key(public_key_raw: bytes) -> tuple[VerifyKey, Fingerprint]:
    """The key object and fingerprint of a raw public key, made once per key: loading the key
    and hashing it cost about as much as a tenth of the verification itself on a slow core, on
    every request. Bounded; keyed by the raw bytes, so a revoked key's entry is never used by
    anything that the key store no longer returns.

    Verification is libsodium's (PyNaCl), signing `cryptography`'s (OpenSSL): both are RFC 8032
    Ed25519, and libsodium verifies in about 66 µs here where OpenSSL takes 170 µs, on every
    signed request. libsodium is also the stricter of the two: it refuses non-canonical
    signatures and small-order keys, which no honest signer produces."""
    # A stored key that is not 32 bytes is a bug in the key store, not a client error.
    assert len(public_key_raw) == PUBLIC_KEY_BYTES, "key store returned a malformed key"
    return VerifyKey(public_key_raw), fingerprint(public_key_raw)
